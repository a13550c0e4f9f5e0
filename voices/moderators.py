"""The moderator role: staff in this group, whose permissions cover voice moderation only
(created by migration voices/0005; `manage.py add_moderator EMAIL` grants it)."""

MODERATORS_GROUP = "Moderators"
