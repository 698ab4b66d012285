from fastapi import APIRouter
from sqlalchemy import text

from controller.api.deps import RuntimeDep
from controller.schemas import Health
from mqtt_contract import SOFTWARE_VERSION

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
def healthz(runtime: RuntimeDep) -> Health:
    """Liveness and readiness: the database answers and the broker link is up."""
    try:
        with runtime.db.session() as s:
            s.execute(text("SELECT 1"))
        db_ok = True
    except Exception:
        db_ok = False
    mqtt_ok = runtime.link.connected.is_set()
    return Health(status="ok" if db_ok and mqtt_ok else "degraded", database=db_ok,
                  mqtt=mqtt_ok, version=SOFTWARE_VERSION, plan_leader=runtime.is_plan_leader)
