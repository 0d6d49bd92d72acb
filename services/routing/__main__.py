"""python -m services.routing api|worker|all|migrate"""

from services.routing import MIGRATIONS
from services.routing.api import create_app
from services.routing.bootstrap import bootstrap
from services.routing.config import RoutingSettings
from shared.runner import run_service

if __name__ == "__main__":
    run_service(
        "routing",
        None,
        settings_factory=RoutingSettings,
        bootstrap=bootstrap,
        create_app=create_app,
        migrations=MIGRATIONS,
    )
