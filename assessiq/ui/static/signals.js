// Browser integrity signals for the candidate's page. Each change of state is sent to the
// candidate's own AssessIQ process (which debounces it per the policy and signs it into the
// log); nothing here talks to anyone else. Paste and copy report a character count; paste
// its text too only when the session's policy asks for it and the candidate agreed.
(() => {
  if (window.__aiqSignals) return;
  window.__aiqSignals = true;
  const send = (kind, state, extra) => emitEvent("aiq_signal", { kind, state, ...(extra || {}) });

  document.addEventListener("visibilitychange", () => send("tab.hidden", document.hidden ? "on" : "off"));
  window.addEventListener("blur", () => send("window.blur", "on"));
  window.addEventListener("focus", () => send("window.blur", "off"));

  const overlay = () => document.getElementById("aiq-fullscreen-overlay");
  document.addEventListener("fullscreenchange", () => {
    if (document.fullscreenElement) {
      send("fullscreen.exit", "off");
      if (overlay()) overlay().style.display = "none";
    } else if (window.__aiqWantFullscreen) {
      send("fullscreen.exit", "on");
      if (overlay()) overlay().style.display = "flex";
    }
  });
  window.aiqEnterFullscreen = async () => {
    window.__aiqWantFullscreen = true;
    try {
      await document.documentElement.requestFullscreen();
    } catch (err) {
      // The browser refused (some embedded or headless browsers do): carry on without it.
      window.__aiqWantFullscreen = false;
      console.warn("fullscreen refused:", err);
    }
    if (overlay()) overlay().style.display = "none";
  };

  document.addEventListener(
    "paste",
    (e) => {
      const text = (e.clipboardData && e.clipboardData.getData("text")) || "";
      const extra = { chars: text.length };
      // The text itself only when the session's policy asks for it and the candidate agreed
      // (the page sets __aiqPasteMax; the process checks both again and caps it).
      const max = window.__aiqPasteMax || 0;
      if (max > 0) extra.text = Array.from(text).slice(0, max).join("");
      send("paste", "instant", extra);
    },
    true,
  );
  document.addEventListener(
    "copy",
    () => {
      let chars = String(window.getSelection() || "").length;
      const ed = document.querySelector(".aiq-editor");
      if (!chars && ed && ed.aiqEditor) {
        const sel = ed.aiqEditor.editor.state.selection.main;
        chars = Math.abs(sel.to - sel.from);
      }
      send("copy", "instant", { chars });
    },
    true,
  );
  document.addEventListener(
    "keydown",
    (e) => {
      const k = (e.key || "").toUpperCase();
      const mod = e.ctrlKey || e.metaKey;
      const devtools =
        k === "F12" ||
        (mod && e.shiftKey && ["I", "J", "C"].includes(k)) ||
        (e.metaKey && e.altKey && ["I", "J", "C"].includes(k)) ||
        (e.ctrlKey && k === "U");
      if (devtools) send("devtools.shortcut", "instant", { key: `${mod ? "Mod-" : ""}${e.shiftKey ? "Shift-" : ""}${e.altKey ? "Alt-" : ""}${k}` });
    },
    true,
  );
  const checkScreens = () => {
    if ("isExtended" in window.screen && window.screen.isExtended) send("screens.multiple", "instant", { n: 2 });
  };
  checkScreens();
  if (window.screen && window.screen.addEventListener) window.screen.addEventListener("change", checkScreens);
  if (document.hidden) send("tab.hidden", "on");
})();
