"""What storage hygiene would remove now (the daily `clean-storage` task removes it)."""

from django.core.management.base import BaseCommand

from ops.storage import storage_clean, storage_plan


class Command(BaseCommand):
    help = "Report orphaned files, expired failed speech jobs and samples of deleted voices; --apply removes them."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--list", action="store_true", dest="show", help="name every file, job and sample")
        parser.add_argument("--apply", action="store_true", help="remove them now (what the daily task does)")

    def handle(self, *args, show: bool = False, apply: bool = False, **options) -> None:
        plan = storage_plan()
        summary = plan.summary()
        self.stdout.write(f"orphaned files: {summary['orphaned_files']} ({summary['orphaned_bytes']} bytes)")
        if show:
            for name, size in plan.orphaned_files:
                self.stdout.write(f"  {name}  {size}")
        self.stdout.write(f"failed speech jobs past retention: {summary['failed_jobs']}")
        if show:
            for pk in plan.failed_job_ids:
                self.stdout.write(f"  {pk}")
        self.stdout.write(f"samples of deleted voices: {summary['deleted_voice_samples']}")
        if show:
            for pk, name in plan.deleted_voice_samples:
                self.stdout.write(f"  sample {pk}  {name or '(no file)'}")
        if apply:
            removed = storage_clean(plan=plan)
            self.stdout.write(self.style.SUCCESS(
                f"removed {removed['orphaned_files']} files, {removed['failed_jobs']} jobs, "
                f"{removed['deleted_voice_samples']} samples"))
        else:
            self.stdout.write("nothing removed (dry run; --apply removes, as the daily clean-storage task does)")
