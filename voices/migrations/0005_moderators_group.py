"""The Moderators group: staff who moderate voices and nothing else (users, tokens, jobs and
books stay out of their reach)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

# Frozen here: a migration must not change when the module it came from does.
GROUP = "Moderators"
PERMISSIONS = [("voices", "view_voice"), ("voices", "change_voice"), ("voices", "view_voicesample"),
               ("voices", "view_voicemoderation")]


def create_group(apps, schema_editor):
    # Permissions are made after migrations by default; this one needs them now.
    for config in apps.get_app_configs():
        config.models_module = True
        create_permissions(config, apps=apps, verbosity=0)
        config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name=GROUP)
    group.permissions.set([Permission.objects.get(content_type__app_label=app, codename=codename)
                           for app, codename in PERMISSIONS])


def remove_group(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name=GROUP).delete()


class Migration(migrations.Migration):
    dependencies = [("voices", "0004_moderation_history"), ("auth", "0012_alter_user_first_name_max_length"),
                    ("contenttypes", "0002_remove_content_type_name")]
    operations = [migrations.RunPython(create_group, remove_group)]
