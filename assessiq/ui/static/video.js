// Video tiles: each <img data-aiq-video="/<secret>/video/<name>"> fetches the newest frame
// from its own app process, one after another (the next request only after the previous
// frame has loaded), so a slow page never queues frames. No frame yet: retry a bit later.
(function () {
  if (window.aiqVideo) return;
  window.aiqVideo = true;
  const GAP_MS = 200, IDLE_MS = 700;
  function pump(img) {
    if (!img.isConnected) { img.aiqPumping = false; return; }
    const probe = new Image();
    probe.onload = () => {
      img.src = probe.src;
      setTimeout(() => pump(img), GAP_MS);
    };
    probe.onerror = () => setTimeout(() => pump(img), IDLE_MS);
    probe.src = img.dataset.aiqVideo + "?n=" + Date.now();
  }
  function scan() {
    document.querySelectorAll("img[data-aiq-video]").forEach((img) => {
      if (!img.aiqPumping) { img.aiqPumping = true; pump(img); }
    });
  }
  setInterval(scan, 500);
  scan();
})();
