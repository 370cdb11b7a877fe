// Video tiles: each <img data-aiq-video="/<secret>/video/<name>"> shows the newest frame of
// its own app process, one frame in flight at a time, so a slow page never queues frames.
//   "ws"   (default): a websocket at <url>/ws pushes the newest JPEG when there is a new one;
//          the page answers "next" once the frame is shown.
//   "poll": fetch <url> again as soon as the last frame is shown, at most MAX_FPS a second.
// ?aiq_render=poll|ws in the page's address (or data-aiq-render on the img) picks one; a
// websocket that never opens falls back to polling. No frame yet: try again a bit later.
(function () {
  if (window.aiqVideo) return;
  window.aiqVideo = true;
  const DEFAULT_MODE = "ws", IDLE_MS = 700, MAX_FPS = 30, NO_VIDEO_MS = 2000;
  const chosen = new URLSearchParams(location.search).get("aiq_render");

  function later(img, fn, ms) {
    setTimeout(() => {
      if (img.isConnected) fn(img); else img.aiqPumping = false;
    }, Math.max(0, ms));
  }

  // Show one JPEG (a Blob), then call done() once it is decoded and on screen.
  function show(img, blob, done) {
    const url = URL.createObjectURL(blob);
    img.onload = () => {
      if (img.aiqUrl) URL.revokeObjectURL(img.aiqUrl);
      img.aiqUrl = url;
      img.aiqShown = (img.aiqShown || 0) + 1;
      img.aiqShownAt = performance.now();
      requestAnimationFrame(() => done());
    };
    img.onerror = () => { URL.revokeObjectURL(url); done(); };
    img.src = url;
  }

  function poll(img) {
    const started = performance.now();
    fetch(img.dataset.aiqVideo + "?n=" + Date.now(), { cache: "no-store" })
      .then((r) => { if (r.status !== 200) throw new Error("no frame"); return r.blob(); })
      .then((blob) => show(img, blob,
        () => later(img, poll, 1000 / MAX_FPS - (performance.now() - started))))
      .catch(() => later(img, poll, IDLE_MS));
  }

  function stream(img) {
    const url = new URL(img.dataset.aiqVideo + "/ws", location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    let opened = false;
    const ws = new WebSocket(url);
    ws.binaryType = "blob";
    ws.onopen = () => { opened = true; };
    ws.onmessage = (event) => {
      if (!img.isConnected) { ws.close(); return; }
      show(img, event.data, () => { if (ws.readyState === WebSocket.OPEN) ws.send("next"); });
    };
    ws.onclose = () => later(img, opened ? stream : poll, IDLE_MS);
  }

  // "camera not available" (the tile's [data-aiq-novideo] label) while no frame came in the
  // last NO_VIDEO_MS: the page sees the frames, so nothing needs to ask the server.
  function presence(img) {
    const label = img.parentElement && img.parentElement.querySelector("[data-aiq-novideo]");
    if (!label) return;
    const live = img.aiqShownAt !== undefined && performance.now() - img.aiqShownAt < NO_VIDEO_MS;
    label.style.display = live ? "none" : "";
  }

  function scan() {
    document.querySelectorAll("img[data-aiq-video]").forEach((img) => {
      presence(img);
      if (img.aiqPumping) return;
      img.aiqPumping = true;
      (((chosen || img.dataset.aiqRender || DEFAULT_MODE) === "poll") ? poll : stream)(img);
    });
  }
  setInterval(scan, 500);
  scan();
})();
