"""Choose the semantic cache's threshold: precision and recall of "same answer" per cosine threshold
over labelled pairs of last user messages (MiniLM, as the cache embeds them), plus the timing of an
exact hit and of a semantic lookup among 10k entries.

A pair is (context_a, text_a, context_b, text_b, same): the cache matches only when the contexts are
equal (the context key) and the cosine reaches the threshold, so follow-ups like "how old is he?"
after different conversations must never match. Run: ``python bench/semantic_cache_pairs.py``.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatplatform.settings")

# Paraphrases: the same question, the same answer.
SAME = [
    ("What is the capital of France?", "What's the capital city of France?"),
    ("How do I reset my password?", "How can I reset my password?"),
    ("What is machine learning?", "Can you explain what machine learning is?"),
    ("How tall is Mount Everest?", "What is the height of Mount Everest?"),
    ("Who wrote Hamlet?", "Who is the author of Hamlet?"),
    ("What time zone is Tokyo in?", "Which time zone does Tokyo use?"),
    ("How do I make a cup of tea?", "How do you make tea?"),
    ("What is the boiling point of water?", "At what temperature does water boil?"),
    ("How many days are in a leap year?", "How many days does a leap year have?"),
    ("What is Python?", "What is the Python programming language?"),
    ("Translate hello into Spanish", "How do you say hello in Spanish?"),
    ("What is the speed of light?", "How fast does light travel?"),
    ("How do I cancel my subscription?", "How can I cancel my subscription?"),
    ("What are your opening hours?", "When are you open?"),
    ("How do I contact support?", "How can I get in touch with support?"),
    ("What is the largest ocean?", "Which ocean is the largest?"),
    ("Who painted the Mona Lisa?", "Who was the painter of the Mona Lisa?"),
    ("How many continents are there?", "What is the number of continents?"),
    ("What is photosynthesis?", "Explain photosynthesis"),
    ("How do I install Python on Windows?", "How can I install Python on a Windows PC?"),
    ("What is the population of Canada?", "How many people live in Canada?"),
    ("Tell me a joke", "Tell me something funny"),
    ("What does HTTP stand for?", "What is HTTP short for?"),
    ("How do I delete my account?", "How can I remove my account?"),
    ("What is the weather like on Mars?", "What is Mars's weather like?"),
    ("Where is the Eiffel Tower?", "Where is the Eiffel Tower located?"),
    ("What is a black hole?", "Can you explain what a black hole is?"),
    ("How do I sort a list in Python?", "How can I sort a Python list?"),
    ("What is the chemical symbol for gold?", "What's gold's chemical symbol?"),
    ("How many legs does a spider have?", "How many legs do spiders have?"),
    ("What is the meaning of life?", "What's the meaning of life?"),
    ("Summarise the plot of Romeo and Juliet", "Give me a summary of Romeo and Juliet's plot"),
    ("How do I change my email address?", "How can I update my email address?"),
    ("What is the currency of Japan?", "Which currency is used in Japan?"),
    ("Is coffee bad for you?", "Is drinking coffee unhealthy?"),
    ("How long does it take to boil an egg?", "How long should I boil an egg?"),
    ("What is the freezing point of water?", "At what temperature does water freeze?"),
    ("Who discovered penicillin?", "Who was the discoverer of penicillin?"),
    ("What is an API?", "Can you explain what an API is?"),
    ("How far is the Moon from Earth?", "What is the distance between the Earth and the Moon?"),
    ("Hello", "Hi"),
    ("Hello, how are you?", "Hi, how are you doing?"),
    ("What can you do?", "What are you able to do?"),
    ("Who are you?", "Who are you exactly?"),
    ("Can you help me?", "Could you help me?"),
    ("Thank you", "Thanks"),
    ("Good morning", "Good morning to you"),
    ("What is the square root of 144?", "What's the square root of 144?"),
    ("How do I convert Celsius to Fahrenheit?", "How do you convert from Celsius to Fahrenheit?"),
    ("What is the tallest building in the world?", "Which building is the tallest in the world?"),
    ("Where can I find my invoices?", "Where are my invoices?"),
    ("How do I upgrade my plan?", "How can I upgrade my plan?"),
    ("What payment methods do you accept?", "Which payment methods do you accept?"),
    ("Do you offer refunds?", "Can I get a refund?"),
    ("How do I enable two-factor authentication?", "How can I turn on two-factor authentication?"),
    ("What is the difference between RAM and ROM?", "How does RAM differ from ROM?"),
    ("Explain recursion", "What is recursion?"),
    ("What is the capital of Australia?", "Which city is the capital of Australia?"),
    ("When did World War II end?", "In what year did World War II end?"),
    ("Who invented the telephone?", "Who was the inventor of the telephone?"),
    ("What is DNA?", "Explain what DNA is"),
    ("How do I write a for loop in JavaScript?", "How do you write a JavaScript for loop?"),
    ("What is the longest river in the world?", "Which river is the longest in the world?"),
    ("What is inflation?", "Can you explain inflation?"),
    ("How many bones are in the human body?", "How many bones does the human body have?"),
    ("What is the smallest planet?", "Which planet is the smallest?"),
    ("How do I reverse a string in Python?", "How can I reverse a Python string?"),
    ("What is a prime number?", "Define a prime number"),
    ("Where do penguins live?", "Where are penguins found?"),
    ("How do vaccines work?", "How does a vaccine work?"),
    ("What is the GDP of Germany?", "How large is Germany's GDP?"),
    ("Recommend a good book", "Can you recommend a good book?"),
    ("What's the best way to learn a language?", "What is the best way to learn a new language?"),
    ("How do I track my order?", "How can I track my order?"),
    ("Where is my package?", "Where is my parcel?"),
    ("What is cloud computing?", "Explain cloud computing"),
    ("How do I make pancakes?", "What's a recipe for pancakes?"),
    ("What is the atomic number of carbon?", "What's carbon's atomic number?"),
    ("How old is the universe?", "What is the age of the universe?"),
    ("What is a noun?", "What does noun mean?"),
    ("Who was the first person on the Moon?", "Who first walked on the Moon?"),
    ("How many players are on a soccer team?", "How many players does a soccer team have?"),
    ("What is the formula for the area of a circle?", "How do I calculate the area of a circle?"),
    ("What is SQL?", "What is the SQL language?"),
    ("How do I center a div in CSS?", "How can I center a div with CSS?"),
    ("What causes rain?", "Why does it rain?"),
    ("What are the symptoms of the flu?", "What symptoms does the flu cause?"),
    ("How do I improve my sleep?", "How can I sleep better?"),
    ("Is it safe to eat raw eggs?", "Are raw eggs safe to eat?"),
    ("What is the population of India?", "How many people live in India?"),
    ("Where is the Great Wall?", "Where is the Great Wall of China located?"),
    ("What language is spoken in Brazil?", "What language do people speak in Brazil?"),
    ("How do I open a bank account?", "How can I open a bank account?"),
    ("What is an electric car?", "What are electric cars?"),
    ("How do I update my app?", "How can I update the app?"),
    ("What is gravity?", "Explain gravity"),
    ("How much water should I drink a day?", "How much water should I drink daily?"),
    ("What is a healthy breakfast?", "What should I eat for a healthy breakfast?"),
    ("Where is the nearest store?", "Where is your nearest store?"),
    ("What does CPU stand for?", "What is CPU short for?"),
]

# Not the same question (often the same topic, or the same words): a hit would be a wrong answer.
DIFFERENT = [
    ("What is the capital of France?", "What is the capital of Germany?"),
    ("How do I reset my password?", "How do I change my username?"),
    ("How tall is Mount Everest?", "How tall is K2?"),
    ("Who wrote Hamlet?", "Who wrote Macbeth?"),
    ("What time zone is Tokyo in?", "What time is it in Tokyo?"),
    ("What is the boiling point of water?", "What is the boiling point of ethanol?"),
    ("What is Python?", "What is Java?"),
    ("Translate hello into Spanish", "Translate hello into French"),
    ("How do I cancel my subscription?", "How do I renew my subscription?"),
    ("What is the largest ocean?", "What is the smallest ocean?"),
    ("What is the population of Canada?", "What is the population of Mexico?"),
    ("How do I delete my account?", "How do I create an account?"),
    ("How do I sort a list in Python?", "How do I sort a list in Java?"),
    ("What is the chemical symbol for gold?", "What is the chemical symbol for silver?"),
    ("How many legs does a spider have?", "How many legs does an ant have?"),
    ("What is the currency of Japan?", "What is the currency of China?"),
    ("What is the freezing point of water?", "What is the boiling point of water?"),
    ("Who discovered penicillin?", "Who discovered gravity?"),
    ("How far is the Moon from Earth?", "How far is Mars from Earth?"),
    ("Hello", "Goodbye"),
    ("What is the square root of 144?", "What is the square root of 169?"),
    ("How do I convert Celsius to Fahrenheit?", "How do I convert Fahrenheit to Celsius?"),
    ("What is the capital of Australia?", "What is the capital of Austria?"),
    ("When did World War II end?", "When did World War I end?"),
    ("Who invented the telephone?", "Who invented the light bulb?"),
    ("How do I write a for loop in JavaScript?", "How do I write a while loop in JavaScript?"),
    ("What is the longest river in the world?", "What is the longest river in Europe?"),
    ("How many bones are in the human body?", "How many muscles are in the human body?"),
    ("What is the smallest planet?", "What is the largest planet?"),
    ("How do I reverse a string in Python?", "How do I reverse a list in Python?"),
    ("What is the GDP of Germany?", "What is the GDP of France?"),
    ("How do I track my order?", "How do I return my order?"),
    ("What is the atomic number of carbon?", "What is the atomic number of oxygen?"),
    ("How old is the universe?", "How old is the Earth?"),
    ("Who was the first person on the Moon?", "Who was the second person on the Moon?"),
    ("How many players are on a soccer team?", "How many players are on a basketball team?"),
    ("What is the formula for the area of a circle?", "What is the formula for the circumference of a circle?"),
    ("How do I center a div in CSS?", "How do I hide a div in CSS?"),
    ("What are the symptoms of the flu?", "What are the symptoms of a cold?"),
    ("What is the population of India?", "What is the population of China?"),
    ("What language is spoken in Brazil?", "What language is spoken in Argentina?"),
    ("How do I open a bank account?", "How do I close a bank account?"),
    ("How do I update my app?", "How do I uninstall the app?"),
    ("How much water should I drink a day?", "How much coffee can I drink a day?"),
    ("What does CPU stand for?", "What does GPU stand for?"),
    ("Is coffee bad for you?", "Is tea bad for you?"),
    ("How long does it take to boil an egg?", "How long does it take to bake a cake?"),
    ("Do you offer refunds?", "Do you offer discounts?"),
    ("What payment methods do you accept?", "What currencies do you accept?"),
    ("How do I upgrade my plan?", "How do I downgrade my plan?"),
    ("How do I enable two-factor authentication?", "How do I disable two-factor authentication?"),
    ("Where can I find my invoices?", "Where can I find my receipts from last year?"),
    ("What is machine learning?", "What is deep learning?"),
    ("What is an API?", "What is a REST API rate limit?"),
    ("What is a black hole?", "What is a white dwarf?"),
    ("Who painted the Mona Lisa?", "Who painted the Sistine Chapel ceiling?"),
    ("How many continents are there?", "How many countries are there?"),
    ("What is photosynthesis?", "What is respiration?"),
    ("How do I install Python on Windows?", "How do I install Python on a Mac?"),
    ("Tell me a joke", "Tell me a story"),
    ("What does HTTP stand for?", "What does HTTPS stand for?"),
    ("Where is the Eiffel Tower?", "How tall is the Eiffel Tower?"),
    ("How do I change my email address?", "How do I verify my email address?"),
    ("What is the speed of light?", "What is the speed of sound?"),
    ("How do I make a cup of tea?", "How do I make a cup of coffee?"),
    ("What are your opening hours?", "What are your holiday opening hours?"),
    ("How do I contact support?", "How do I become a support agent?"),
    ("What is the tallest building in the world?", "What is the tallest mountain in the world?"),
    ("What is DNA?", "What is RNA?"),
    ("What is inflation?", "What is deflation?"),
    ("Where do penguins live?", "What do penguins eat?"),
    ("How do vaccines work?", "Are vaccines safe for children?"),
    ("Recommend a good book", "Recommend a good movie"),
    ("Where is my package?", "How much does shipping cost?"),
    ("What is cloud computing?", "What is edge computing?"),
    ("How do I make pancakes?", "How do I make waffles?"),
    ("What is a noun?", "What is a verb?"),
    ("What is SQL?", "What is NoSQL?"),
    ("What causes rain?", "What causes snow?"),
    ("How do I improve my sleep?", "How do I improve my memory?"),
    ("Is it safe to eat raw eggs?", "Is it safe to eat raw chicken?"),
    ("Where is the Great Wall?", "How long is the Great Wall?"),
    ("What is an electric car?", "How much does an electric car cost?"),
    ("What is gravity?", "What is magnetism?"),
    ("What is a healthy breakfast?", "What is a healthy dinner?"),
    ("Where is the nearest store?", "When does the nearest store close?"),
    ("What is the weather like on Mars?", "What is the weather like today?"),
    ("Summarise the plot of Romeo and Juliet", "Summarise the plot of Hamlet"),
    ("What can you do?", "What can't you do?"),
    ("Thank you", "No thank you"),
    ("Can you help me?", "Can you help me write an email to my boss?"),
    ("What is the meaning of life?", "What is the meaning of the word life?"),
    ("Who are you?", "Who am I?"),
    ("Explain recursion", "Explain iteration"),
    ("What is a prime number?", "What is a composite number?"),
    ("What is the difference between RAM and ROM?", "What is the difference between a CPU and a GPU?"),
    ("Good morning", "Good night"),
    ("How do I write a for loop in JavaScript?", "How do I write a for loop in Python?"),
    ("Yes", "No"),
    ("What is 2 + 2?", "What is 2 + 3?"),
]

EINSTEIN = ("Who was Albert Einstein?", "A physicist.")
OBAMA = ("Who is Barack Obama?", "A former US president.")
PARIS = ("Tell me about Paris.", "Paris is the capital of France.")
ROME = ("Tell me about Rome.", "Rome is the capital of Italy.")
PYTHON = ("I am writing Python.", "Great, what do you need?")
JAVA = ("I am writing Java.", "Great, what do you need?")
# Follow-ups: the same words after different conversations are different questions (the context
# key keeps them apart); after the same conversation, a paraphrase is the same question.
FOLLOW_UPS = [
    (EINSTEIN, "How old is he?", OBAMA, "How old is he?", False),
    (EINSTEIN, "How old is he?", EINSTEIN, "What age is he?", True),
    (EINSTEIN, "Where was he born?", OBAMA, "Where was he born?", False),
    (OBAMA, "Where was he born?", OBAMA, "What is his birthplace?", True),
    (PARIS, "What is the population?", ROME, "What is the population?", False),
    (PARIS, "What is the population?", PARIS, "How many people live there?", True),
    (PYTHON, "How do I read a file?", JAVA, "How do I read a file?", False),
    (PYTHON, "How do I read a file?", PYTHON, "How can I read a file?", True),
    (PARIS, "What should I visit there?", ROME, "What should I visit there?", False),
    (ROME, "What should I visit there?", ROME, "What are the sights to see there?", True),
    (EINSTEIN, "What is he famous for?", OBAMA, "What is he famous for?", False),
    (OBAMA, "What is he famous for?", OBAMA, "What is he known for?", True),
]


def pairs() -> list[tuple]:
    return ([((), a, (), b, True) for a, b in SAME] + [((), a, (), b, False) for a, b in DIFFERENT]
            + FOLLOW_UPS)


def measure_thresholds() -> list[dict]:
    import numpy as np

    from providers import embeddings

    labelled = pairs()
    texts = sorted({t for p in labelled for t in (p[1], p[3])})
    vectors = dict(zip(texts, np.asarray(embeddings.embed_texts(texts), dtype=np.float32), strict=True))
    scored = [(float(vectors[a] @ vectors[b]) if ca == cb else -1.0, same) for ca, a, cb, b, same in labelled]
    rows = []
    for threshold in (0.80, 0.85, 0.88, 0.90, 0.92, 0.94, 0.96):
        tp = sum(1 for s, same in scored if s >= threshold and same)
        fp = sum(1 for s, same in scored if s >= threshold and not same)
        fn = sum(1 for s, same in scored if s < threshold and same)
        rows.append({"threshold": threshold, "precision": tp / (tp + fp) if tp + fp else 1.0,
                     "recall": tp / (tp + fn) if tp + fn else 0.0, "false_hits": fp})
    return rows


def measure_lookups(entries: int = 10_000) -> dict:
    """Exact-hit and semantic-lookup server time with ``entries`` rows in one context."""
    import django

    django.setup()
    from django.conf import settings
    from django.test.utils import (
        get_runner,  # noqa: F401 - the test database machinery
        setup_test_environment,
    )

    setup_test_environment()
    from django.db import connection
    from django.test.utils import setup_databases, teardown_databases

    old = setup_databases(verbosity=0, interactive=False)
    try:
        import numpy as np

        from providers import cache as response_cache
        from providers import semantic_cache
        from providers.adapters.base import ChatMessage
        from providers.models import ResponseCacheEntry
        from providers.params import GenerationParams

        settings.RESPONSE_CACHE_MAX_ENTRIES = entries * 2
        params = GenerationParams(temperature=0.2)
        context = response_cache.context_key(model="gpt-4o-mini", system=None, params=params, prior=[])
        rng = np.random.default_rng(7)
        vectors = rng.standard_normal((entries, 384)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        from datetime import timedelta

        from django.utils import timezone

        expires = timezone.now() + timedelta(hours=1)
        ResponseCacheEntry.objects.bulk_create([ResponseCacheEntry(
            key=f"{i:064x}", scope="user:1", context_key=context, model="gpt-4o-mini", prompt=f"q{i}",
            vector=vectors[i].tobytes(), size_bytes=100, expires_at=expires) for i in range(entries)], batch_size=2000)
        message = ChatMessage("user", "What is the capital of France?")
        key = response_cache.exact_key(scope="user:1", context=context, last=message)
        response_cache.entry_store(key=key, scope="user:1", context=context, model="gpt-4o-mini",
                                   prompt=message.content, value={"text": "Paris."}, vector=None)
        settings.SEMANTIC_CACHE_ENABLED = False
        exact = []
        for _ in range(200):
            started = time.perf_counter()
            verdict, _value, _plan = response_cache.lookup(scope="user:1", model="gpt-4o-mini", system=None,
                                                           params=params, messages=[message])
            exact.append((time.perf_counter() - started) * 1000)
            assert verdict.hit
        query = semantic_cache.embed("How old is the universe?")
        search = []
        for _ in range(50):
            started = time.perf_counter()
            semantic_cache.nearest(context=context, scope="user:1", vector=query, threshold=0.92)
            search.append((time.perf_counter() - started) * 1000)
        embed = []
        for _ in range(30):
            started = time.perf_counter()
            semantic_cache.embed("How old is the universe?")
            embed.append((time.perf_counter() - started) * 1000)
        return {"entries": entries, "database": connection.vendor,
                "exact_hit_p50_ms": statistics.median(exact), "semantic_search_p50_ms": statistics.median(search),
                "embedding_p50_ms": statistics.median(embed)}
    finally:
        teardown_databases(old, verbosity=0)


def main() -> None:
    import django

    django.setup()
    print(f"{len(pairs())} labelled pairs")
    print("threshold  precision  recall  false hits")
    for row in measure_thresholds():
        print(f"{row['threshold']:.2f}       {row['precision']:.3f}      {row['recall']:.3f}   {row['false_hits']}")
    print(measure_lookups())


if __name__ == "__main__":
    main()
