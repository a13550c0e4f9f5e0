"""Storage hygiene: what no row needs any more, found (`storage_plan`) and removed (`storage_clean`).

Three kinds, each with its own rule:
- orphaned files: files under a file field's folder (clips, samples, covers, page pictures,
  exports) that no row of any model points to, older than STORAGE_ORPHAN_MIN_AGE_HOURS (a file
  is written before its row commits, so a fresh one may belong to a transaction still running);
- failed speech jobs finished more than SPEECH_JOB_FAILED_RETENTION_DAYS ago;
- samples of deleted voices (the rows, and their files at once: a deleted voice's recordings are
  the speaker's, not ours to keep).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.apps import apps
from django.conf import settings
from django.core.files.storage import default_storage
from django.db import models, transaction
from django.utils import timezone

from storybook.audio import BOOK_AUDIO_FOLDER
from storybook.images import IMAGES_FOLDER
from tts.models import SpeechJob
from voices.models import VoiceSample

logger = logging.getLogger(__name__)


@dataclass
class StoragePlan:
    orphaned_files: list[tuple[str, int]] = field(default_factory=list)  # (storage name, bytes)
    failed_job_ids: list = field(default_factory=list)
    deleted_voice_samples: list[tuple[int, str]] = field(default_factory=list)  # (sample id, file name or "")

    @property
    def orphaned_bytes(self) -> int:
        return sum(size for _, size in self.orphaned_files)

    def summary(self) -> dict[str, int]:
        return {"orphaned_files": len(self.orphaned_files), "orphaned_bytes": self.orphaned_bytes,
                "failed_jobs": len(self.failed_job_ids), "deleted_voice_samples": len(self.deleted_voice_samples)}


def _file_fields() -> list[models.FileField]:
    return [f for model in apps.get_models() for f in model._meta.get_fields()
            if isinstance(f, models.FileField) and f.concrete]


def _folders(referenced: set[str]) -> set[str]:
    """Where the project writes files: the top folder of every file field's `upload_to`, of every
    stored name, and the folders written under their own names (book images, whole-book audio)."""
    folders = {f.upload_to.split("/", 1)[0] for f in _file_fields() if isinstance(f.upload_to, str) and f.upload_to}
    folders |= {name.split("/", 1)[0] for name in referenced if "/" in name}
    return folders | {IMAGES_FOLDER, BOOK_AUDIO_FOLDER}


def _referenced() -> set[str]:
    names: set[str] = set()
    for f in _file_fields():
        names.update(name for name in f.model._base_manager.exclude(**{f.name: ""}).values_list(f.name, flat=True)
                     .iterator() if name)
    return names


def _walk(folder: str) -> Iterator[str]:
    try:
        dirs, files = default_storage.listdir(folder)
    except FileNotFoundError:
        return
    for name in files:
        yield f"{folder}/{name}"
    for sub in dirs:
        yield from _walk(f"{folder}/{sub}")


def storage_plan(*, now: datetime | None = None) -> StoragePlan:
    now = now or timezone.now()
    plan = StoragePlan()
    # Rows first, files second: a file written after this read is young, so kept by the age rule.
    referenced = _referenced()
    oldest = now - timedelta(hours=settings.STORAGE_ORPHAN_MIN_AGE_HOURS)
    for folder in sorted(_folders(referenced)):
        for name in _walk(folder):
            if name in referenced:
                continue
            try:
                if default_storage.get_modified_time(name) > oldest:
                    continue
                plan.orphaned_files.append((name, default_storage.size(name)))
            except FileNotFoundError:
                continue  # removed meanwhile
    cutoff = now - timedelta(days=settings.SPEECH_JOB_FAILED_RETENTION_DAYS)
    plan.failed_job_ids = list(SpeechJob.objects.filter(status=SpeechJob.Status.FAILED, finished_at__lt=cutoff)
                               .order_by("finished_at").values_list("pk", flat=True))
    plan.deleted_voice_samples = list(VoiceSample.objects.filter(voice__deleted_at__isnull=False)
                                      .order_by("pk").values_list("pk", "file"))
    return plan


def storage_clean(*, plan: StoragePlan | None = None) -> dict[str, int]:
    """Remove what `plan` (a fresh one by default) lists; each part is re-checked as it goes, so a
    plan read a while ago never removes what has since been put to use."""
    plan = plan or storage_plan()
    referenced = _referenced()
    removed_files = 0
    for name, _ in plan.orphaned_files:
        if name not in referenced:  # a row that points to it since the plan was read keeps it
            default_storage.delete(name)
            removed_files += 1
    with transaction.atomic():
        _, jobs = SpeechJob.objects.filter(pk__in=plan.failed_job_ids, status=SpeechJob.Status.FAILED).delete()
        samples = VoiceSample.objects.filter(pk__in=[pk for pk, _ in plan.deleted_voice_samples],
                                             voice__deleted_at__isnull=False)
        sample_files = [name for name in samples.values_list("file", flat=True) if name]
        _, removed_samples = samples.delete()
        transaction.on_commit(lambda: [default_storage.delete(name) for name in sample_files])
    result = {"orphaned_files": removed_files, "failed_jobs": jobs.get(SpeechJob._meta.label, 0),
              "deleted_voice_samples": removed_samples.get(VoiceSample._meta.label, 0)}
    logger.info("storage cleaned: %s", result)
    return result
