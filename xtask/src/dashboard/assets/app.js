// The dashboard's live view: /events pushes the server-rendered <main>
// (already escaped) after every change; swap it in, keeping open <details>.
"use strict";
(function () {
  const live = document.getElementById("live");
  const events = new EventSource("/events");
  events.addEventListener("main", function (event) {
    const main = document.getElementById("main");
    const open = new Set();
    main.querySelectorAll("details[open][data-id]").forEach(function (d) {
      open.add(d.dataset.id);
    });
    main.innerHTML = JSON.parse(event.data);
    main.querySelectorAll("details[data-id]").forEach(function (d) {
      if (open.has(d.dataset.id)) d.open = true;
    });
    live.textContent = "live";
    live.className = "live on";
    document.body.dataset.version = event.lastEventId;
  });
  events.onerror = function () {
    live.textContent = "dashboard unreachable, retrying";
    live.className = "live off";
  };
})();
