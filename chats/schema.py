"""OpenAPI declarations of the chat routes (drf-spectacular), kept apart so the views stay thin.

drf-spectacular documents DRF views only. For the async views (SSE and ``/v1``), never-routed
APIViews carry the schema; :func:`documented` points a view's ``cls`` at one (as DRF's ``as_view``
does), so the generator lists the route with that declaration.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.parsers import JSONParser
from rest_framework.permissions import AllowAny
from rest_framework.views import APIView

from chats.anthropic_inputs import CountTokensInput, MessagesInput
from chats.inputs import (
    ChatCompletionsInput,
    CompletionInput,
    ConversationStartInput,
    MessageEditInput,
    RegenerateInput,
    SendMessageInput,
)
from chats.responses_inputs import ResponsesInput
from chats.serializers import (
    BranchOutput,
    ChatCompletionsOutput,
    CompletionOutput,
    ConversationCreatedOutput,
    SendMessageOutput,
)
from chats.transports.openai import EmbeddingsInput, OpenAIChatInput

CHAT_TAG = ["chat"]
CHATS_TAG = ["chats"]
OPENAI_TAG = ["openai"]
ANTHROPIC_TAG = ["anthropic"]

IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key", OpenApiTypes.STR, OpenApiParameter.HEADER, required=False,
    description="A retry with the same key returns the first result (or replays the same stream) without a "
                "second provider call.")
LAST_EVENT_ID = OpenApiParameter("Last-Event-ID", str, OpenApiParameter.HEADER, required=False,
                                 description="`<stream_id>:<n>`: resume that stream after event n.")
BAD_REQUEST = OpenApiResponse(description="Malformed JSON, or a field the route does not know "
                                          "(`UNSUPPORTED_FIELD`, `details` naming each).")
REPLY_ERRORS = {
    400: BAD_REQUEST,
    404: OpenApiResponse(description="Conversation or message not found (or not yours)."),
    422: OpenApiResponse(description="Validation error."),
    429: OpenApiResponse(description="The provider is rate limiting."),
    502: OpenApiResponse(description="The provider failed; the user's message is kept."),
    504: OpenApiResponse(description="The provider timed out; the user's message is kept."),
}
SSE_DESCRIPTION = (
    "Server-Sent Events (`text/event-stream`). Each event has `id: <stream_id>:<n>` and one `data:` line: "
    '`{"chunk": "...", "index": 0}` per piece of text, `{"thinking": "..."}` (`event: thinking`) when '
    'extended thinking streams, then `{"finished": true, "usage": {...}, "response": "...", ...}`, or on '
    'failure `event: error` with `{"error": "...", "code": "PROVIDER_ERROR", ...}`. `: ping` comments every '
    "15 s while idle. Reconnect with `Last-Event-ID` to get the missed events (GET /chat/stream/{stream_id})."
)
_sse = OpenApiResponse(response=OpenApiTypes.STR, description=SSE_DESCRIPTION)

# --- DRF views (decorators) ------------------------------------------------------------------------

SEND_MESSAGE = extend_schema(
    tags=CHAT_TAG, request=SendMessageInput, responses={200: SendMessageOutput, **REPLY_ERRORS},
    parameters=[IDEMPOTENCY_HEADER],
    description="Send a message and get the assistant's reply (seed 000). `conversation_id`: one of yours, or a "
                "new id to start that conversation, or omitted for a new one. `user_id` is ignored: the caller "
                "is the user.")
CONVERSATION_START = extend_schema(
    tags=CHAT_TAG, request=ConversationStartInput, responses={201: ConversationCreatedOutput, **REPLY_ERRORS},
    parameters=[IDEMPOTENCY_HEADER],
    description="Start a conversation (seed 000). With `initial_message`, the first turn runs too and `reply` "
                "holds the answer; if the provider then fails, the error envelope names the created "
                "`conversation_id` in `details`.")
MESSAGE_EDIT = extend_schema(
    tags=CHATS_TAG, request=MessageEditInput, responses={200: BranchOutput, **REPLY_ERRORS},
    parameters=[IDEMPOTENCY_HEADER],
    description="Edit a user message: a new sibling message (same parent) with this content and a new reply to "
                "it; the conversation follows the new branch. The original messages stay (see `all_branches=true`).")
REGENERATE = extend_schema(
    tags=CHATS_TAG, request=RegenerateInput, responses={200: BranchOutput, **REPLY_ERRORS},
    parameters=[IDEMPOTENCY_HEADER],
    description="A new reply to the user message this assistant message answered (or to the given user "
                "message): a sibling of the earlier replies; the conversation follows it. Optional `model`, "
                "`provider`, `model_parameters`.")


# --- async views (declarations) ------------------------------------------------------------------------


class _Declaration(APIView):
    """Schema-only: these classes are never routed."""

    parser_classes = [JSONParser]

    def _never_called(self, *args, **kwargs):  # pragma: no cover
        raise NotImplementedError


class SendMessageDeclaration(_Declaration):
    @SEND_MESSAGE
    def post(self, request, *args, **kwargs):  # pragma: no cover
        self._never_called()


class ChatCompletionDeclaration(_Declaration):
    permission_classes = [AllowAny]

    @extend_schema(
        tags=CHAT_TAG, request=CompletionInput, parameters=[IDEMPOTENCY_HEADER, LAST_EVENT_ID],
        responses={(200, "application/json"): CompletionOutput, (200, "text/event-stream"): _sse, 400: BAD_REQUEST},
        description="Seed 001's chat completion; stateless (send `conversation_history`). Open to anonymous "
                    "callers while ANONYMOUS_CHAT is on, limited to public models. `stream: true` answers as "
                    "POST /chat/stream. `X-Cache-Status: BYPASS`.",
    )
    def post(self, request, *args, **kwargs):  # pragma: no cover
        self._never_called()


class ChatStreamDeclaration(_Declaration):
    permission_classes = [AllowAny]

    @extend_schema(tags=CHAT_TAG, request=CompletionInput, parameters=[IDEMPOTENCY_HEADER, LAST_EVENT_ID],
                   responses={(200, "text/event-stream"): _sse, 400: BAD_REQUEST},
                   description="Seed 001's streaming chat (same request as /chat/completion).")
    def post(self, request, *args, **kwargs):  # pragma: no cover
        self._never_called()


class ChatStreamResumeDeclaration(_Declaration):
    permission_classes = [AllowAny]

    @extend_schema(tags=CHAT_TAG, parameters=[LAST_EVENT_ID, OpenApiParameter(
        "last_event_id", str, OpenApiParameter.QUERY, required=False, description="Same as the header.")],
        responses={(200, "text/event-stream"): _sse},
        description="Resume a stream: the events after `Last-Event-ID`, then the rest live. 404 for "
                    "another caller's stream or one that expired (10 minutes after its end).")
    def get(self, request, *args, **kwargs):  # pragma: no cover
        self._never_called()


class ChatCompletionsDeclaration(_Declaration):
    @extend_schema(
        tags=CHAT_TAG, request=ChatCompletionsInput, parameters=[IDEMPOTENCY_HEADER, LAST_EVENT_ID],
        responses={(200, "application/json"): ChatCompletionsOutput, (200, "text/event-stream"): _sse,
                   400: BAD_REQUEST},
        description="Seed 004's completion. With `chat_id` (one of your chats; 404 otherwise) the last user "
                    "message is added to the chat; without it a new chat is created from `messages` and "
                    "its id returned as `chat_id`. `use_extended_thinking` and `use_web_grounding` reach "
                    "providers that support them; `use_rag: true` (or the chat's `settings.use_rag`) adds your "
                    "nearest document chunks to the prompt and returns them as `citations` (streamed: an "
                    "`event: citations` first).",
    )
    def post(self, request, *args, **kwargs):  # pragma: no cover
        self._never_called()


_OPENAI_CHAT_RESPONSE = OpenApiResponse(response=OpenApiTypes.OBJECT, description=(
    "OpenAI's `chat.completion` object; with `stream: true`, `text/event-stream` of `chat.completion.chunk` "
    "objects ending with `data: [DONE]` (a usage chunk first when `stream_options.include_usage`)."))


class OpenAIChatCompletionsDeclaration(_Declaration):
    @extend_schema(tags=OPENAI_TAG, request=OpenAIChatInput, operation_id="openai_chat_completions_create",
                   responses={(200, "application/json"): _OPENAI_CHAT_RESPONSE,
                              (200, "text/event-stream"): OpenApiTypes.STR},
                   description="OpenAI-compatible chat completions (use any OpenAI SDK with base_url=…/v1). "
                               "Errors use OpenAI's error shape.")
    def post(self, request, *args, **kwargs):  # pragma: no cover
        self._never_called()


class OpenAIModelsDeclaration(_Declaration):
    @extend_schema(tags=OPENAI_TAG, responses={200: OpenApiTypes.OBJECT}, operation_id="openai_models_list",
                   description="OpenAI's model list: `{\"object\": \"list\", \"data\": [{\"id\", \"object\", "
                               "\"created\", \"owned_by\"}]}`.")
    def get(self, request, *args, **kwargs):  # pragma: no cover
        self._never_called()


class OpenAIModelDetailDeclaration(_Declaration):
    @extend_schema(tags=OPENAI_TAG, responses={200: OpenApiTypes.OBJECT}, operation_id="openai_models_retrieve",
                   description="One OpenAI model object.")
    def get(self, request, *args, **kwargs):  # pragma: no cover
        self._never_called()


class OpenAIEmbeddingsDeclaration(_Declaration):
    @extend_schema(tags=OPENAI_TAG, request=EmbeddingsInput, responses={200: OpenApiTypes.OBJECT},
                   operation_id="openai_embeddings_create",
                   description="OpenAI-compatible embeddings with all-MiniLM-L6-v2 (384 dimensions), computed "
                               "on this server; `encoding_format` `float` or `base64`.")
    def post(self, request, *args, **kwargs):  # pragma: no cover
        self._never_called()


class ResponsesDeclaration(_Declaration):
    @extend_schema(tags=OPENAI_TAG, request=ResponsesInput, operation_id="openai_responses_create",
                   responses={(200, "application/json"): OpenApiTypes.OBJECT,
                              (200, "text/event-stream"): OpenApiTypes.STR},
                   description="OpenAI's Responses API for any catalogue model: text or item `input`, "
                               "`instructions`, function tools, `text.format`, `previous_response_id` (stored "
                               "responses are conversations), streaming with the Responses event types.")
    def post(self, request, *args, **kwargs):  # pragma: no cover
        self._never_called()


class ResponseDetailDeclaration(_Declaration):
    @extend_schema(tags=OPENAI_TAG, responses={200: OpenApiTypes.OBJECT}, operation_id="openai_responses_retrieve",
                   description="A stored response of the caller's (the Response object).")
    def get(self, request, *args, **kwargs):  # pragma: no cover
        self._never_called()


class AnthropicMessagesDeclaration(_Declaration):
    @extend_schema(tags=ANTHROPIC_TAG, request=MessagesInput, operation_id="anthropic_messages_create",
                   parameters=[OpenApiParameter("anthropic-version", str, OpenApiParameter.HEADER, required=False,
                                                description="Accepted (any version).")],
                   responses={(200, "application/json"): OpenApiTypes.OBJECT,
                              (200, "text/event-stream"): OpenApiTypes.STR},
                   description="Anthropic's Messages API for any catalogue model (use the anthropic SDK with "
                               "base_url=<server>, api_key=<cpk_ key>): the Message object, or with `stream` "
                               "Anthropic's SSE events. Errors use Anthropic's error shape.")
    def post(self, request, *args, **kwargs):  # pragma: no cover
        self._never_called()


class AnthropicCountTokensDeclaration(_Declaration):
    @extend_schema(tags=ANTHROPIC_TAG, request=CountTokensInput, operation_id="anthropic_messages_count_tokens",
                   responses={200: OpenApiTypes.OBJECT},
                   description='`{"input_tokens": N}`: the gateway\'s estimate of the prompt (system, messages, '
                               "tools, images).")
    def post(self, request, *args, **kwargs):  # pragma: no cover
        self._never_called()


def documented(view, declaration: type[APIView]):
    """Let the schema generator document the async ``view`` with ``declaration``."""
    view.cls = declaration
    view.initkwargs = {}
    return view
