"""Loader hook: the voice library at a realistic size.

Each bench user owns 20 voices and sees 40 shared ones (25 default + 15 approved public); filler
users' private voices bring the table to 100,000 rows (`--load-opt voices_total=N`).
"""

from __future__ import annotations

import uuid

from tests.benchmarks.load import LoadContext, register_hook

OWN_PER_USER = 20
DEFAULTS = 25
PUBLIC = 15
FILLER_VOICES_PER_USER = 100


@register_hook
def load_voices(ctx: LoadContext) -> None:
    from django.contrib.auth.hashers import make_password

    from accounts.models import User
    from voices.models import Voice

    total = int(ctx.options.get("voices_total", 100_000))

    def voice(owner, n: int, **fields) -> Voice:
        fields.setdefault("category", Voice.Category.CLONED)
        return Voice(owner=owner, provider="local", provider_voice_id=f"bench-{uuid.uuid4().hex}",
                     name=f"Voice {n}", language="en", status=Voice.Status.COMPLETED, **fields)

    rows = [voice(None, i, visibility="default", category=Voice.Category.PREMADE) for i in range(DEFAULTS)]
    publisher = User.objects.create(email="bench-publisher@bench.invalid", password=make_password(None))
    rows += [voice(publisher, i, visibility="public", moderation_status="approved") for i in range(PUBLIC)]
    for user in ctx.users:
        rows += [voice(user, i) for i in range(OWN_PER_USER)]

    filler_needed = max(0, total - len(rows))
    n_filler = -(-filler_needed // FILLER_VOICES_PER_USER)
    fillers = User.objects.bulk_create(
        [User(email=f"bench-filler-{i:06d}@bench.invalid", password=make_password(None)) for i in range(n_filler)],
        batch_size=2000,
    )
    for i in range(filler_needed):
        rows.append(voice(fillers[i // FILLER_VOICES_PER_USER], i))
    Voice.objects.bulk_create(rows, batch_size=5000)
    ctx.extra["voices_total"] = Voice.objects.count()
