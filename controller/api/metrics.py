"""``GET /metrics``: this replica's numbers for Prometheus (controller/metrics.py).

Admin only: it names communes and shows the fleet's state. Prometheus scrapes with an API
token issued (``POST /api/tokens``) for an admin account kept for it, as a bearer token.
"""

from fastapi import APIRouter, Response

from controller.api.deps import Admin, RuntimeDep
from controller.metrics import EXPOSITION_TYPE

router = APIRouter(tags=["operations"])


@router.get("/metrics", response_class=Response, responses={200: {
    "description": "Prometheus text exposition format",
    "content": {"text/plain": {"schema": {"type": "string"}}}}})
def metrics(_: Admin, runtime: RuntimeDep) -> Response:
    """Nodes online and plan lag per commune, alerts and reports taken in, the ingest
    queue, the MQTT link, the plan lease and request latency (see docs/deploy.md,
    Monitoring)."""
    return Response(runtime.metrics.exposition(), media_type=EXPOSITION_TYPE)
