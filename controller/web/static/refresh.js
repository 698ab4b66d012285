// The dashboard reloads itself every 20 s (node status, what plays now), unless the
// page is hidden; staff keep it open on a screen in the commune office.
"use strict";
setInterval(() => { if (!document.hidden) location.reload(); }, 20000);
