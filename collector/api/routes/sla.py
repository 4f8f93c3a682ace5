"""``/api/sla``: the terms in force (deadlines per priority) and each site's calendar (a customer's user:
its own sites' calendars)."""

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from collector.api.auth import Reader, scope
from collector.api.deps import Wired
from collector.api.errors import answers
from collector.sla.calendar import describe

router = APIRouter(tags=["sla"])


@router.get("/api/sla", responses=answers(401, 403))
def terms(wired: Wired, who: Reader) -> JSONResponse:
    policy = wired.sla.policy
    calendars = wired.sla.calendars
    with wired.engine.connect() as conn:
        seen = scope(conn, who)
    sites = {name: item for name, item in calendars.sites.items() if seen is None or seen.has_site(name)}
    return JSONResponse(
        {
            "priorities": {
                name: {
                    "window": item.window,
                    "response_hours": item.response_hours,
                    "update_hours": item.update_hours,
                    "delivery_hours": item.delivery_hours,
                    "delivery": item.delivery,
                }
                for name, item in policy.priorities.items()
            },
            "warn_before_minutes": policy.warn_before.total_seconds() / 60,
            "return_days": policy.return_days,
            "default_site": describe(calendars.default),
            "sites": {name: describe(calendar) for name, calendar in sites.items()},
        }
    )
