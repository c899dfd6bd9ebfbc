from django.db import migrations


def load(apps, schema_editor):
    from providers.catalogue import sync_capabilities

    # The gateway API's capabilities (tools, json_object/json_schema, vision for Claude, seed,
    # penalties) join the stored catalogue rows; rows an operator edited keep their own additions.
    sync_capabilities(apps.get_model("providers", "Model"))


class Migration(migrations.Migration):
    dependencies = [("providers", "0006_provider_config_team")]
    operations = [migrations.RunPython(load, migrations.RunPython.noop)]
