from django.db import migrations


def load(apps, schema_editor):
    from providers.catalogue import sync_catalogue

    # Adds the catalogue models a database does not have yet (Claude Haiku 4.5, the public
    # Anthropic model of seed 001's open routes); rows an operator edited are left alone.
    sync_catalogue(apps.get_model("providers", "Model"))


class Migration(migrations.Migration):
    dependencies = [("providers", "0004_model_created_at")]
    operations = [migrations.RunPython(load, migrations.RunPython.noop)]
