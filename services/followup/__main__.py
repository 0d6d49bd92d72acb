"""python -m services.followup api|worker|all|migrate"""

from services.followup import MIGRATIONS
from services.followup.api import create_app
from services.followup.bootstrap import bootstrap
from services.followup.config import FollowupSettings
from shared.runner import run_service

if __name__ == "__main__":
    run_service(
        "followup",
        None,
        settings_factory=FollowupSettings,
        bootstrap=bootstrap,
        create_app=create_app,
        migrations=MIGRATIONS,
    )
