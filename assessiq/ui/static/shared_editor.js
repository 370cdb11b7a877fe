// The shared editor element (assessiq/ui/editor.py): mounts the bundled CodeMirror + Yjs
// editor (js/src/editor.js, built into static/yeditor/), which syncs with this app's own
// process over ws(s)://<this host><base>/yjs/<room>.
import { mountEditor } from "aiq-yeditor";

export default {
  template: `<div class="aiq-editor" style="height:100%"></div>`,
  props: {
    base: String,
    room: String,
    clientId: Number,
    language: String,
    readOnly: Boolean,
    user: Object,
  },
  watch: {
    language(value) {
      this.handle.setLanguage(value);
    },
    readOnly(value) {
      this.handle.setReadOnly(value);
    },
  },
  mounted() {
    const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    this.handle = mountEditor(this.$el, {
      url: `${scheme}//${window.location.host}${this.base}/yjs`,
      room: this.room,
      clientId: this.clientId,
      language: this.language,
      readOnly: this.readOnly,
      user: this.user,
    });
    // Its name for screen readers, and how the keyboard leaves it: Tab indents in it
    // (CodeMirror's indentWithTab), Escape and then Tab moves the focus on.
    // A tab stop read-only too (then CodeMirror makes it not editable, so not focusable):
    // its code can still be scrolled and read with the keyboard.
    const content = this.handle.editor.contentDOM;
    content.setAttribute("aria-label", "Code editor (Escape, then Tab, to leave it)");
    content.tabIndex = 0;
    // Tests and the latency benchmark read the editor through this handle.
    this.$el.aiqEditor = this.handle;
  },
  unmounted() {
    if (this.handle) this.handle.destroy();
  },
};
