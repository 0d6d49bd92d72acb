"""python -m services.intake api|worker|all|migrate"""

from services.intake import MIGRATIONS
from services.intake.api import create_app
from services.intake.bootstrap import bootstrap
from services.intake.config import IntakeSettings
from shared.runner import run_service

if __name__ == "__main__":
    run_service(
        "intake",
        None,
        settings_factory=IntakeSettings,
        bootstrap=bootstrap,
        create_app=create_app,
        migrations=MIGRATIONS,
    )
