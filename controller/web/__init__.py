"""The web pages of the controller: staff, leaders, officers and admins use these.

``router`` holds the pages, ``STATIC_DIR`` their CSS and scripts (no build step), and
``CSRFMiddleware`` protects every form and every cookie-authenticated API call.
"""

from controller.web import staff_pages
from controller.web.csrf import CSRFMiddleware
from controller.web.pages import STATIC_DIR, router

router.include_router(staff_pages.router)

__all__ = ["STATIC_DIR", "CSRFMiddleware", "router"]
