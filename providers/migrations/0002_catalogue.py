from django.db import migrations


def load(apps, schema_editor):
    from providers.catalogue import sync_catalogue

    sync_catalogue(apps.get_model("providers", "Model"))


class Migration(migrations.Migration):
    dependencies = [("providers", "0001_initial")]
    operations = [migrations.RunPython(load, migrations.RunPython.noop)]
