// A CodeMirror 6 editor kept in step with its Python binding (assessiq/ui/editor.py).
//
// The Python side is the authority for this browser. Every update it sends is numbered; the
// browser keeps the number of updates it has seen (`version`) and its own edits that Python
// has not confirmed yet (`unconfirmed`, one ChangeSet per edit). An edit is pushed with the
// version it was made on; Python accepts it only if that is still its latest version and
// confirms it, otherwise the browser first receives the updates it missed, rebases its own
// edits over them with CodeMirror's ChangeSet.map (as @codemirror/collab does) and pushes
// again. Remote edits are dispatched as change sets, so the local cursor never jumps.
// Offsets on the wire are UTF-16 code units, CodeMirror's own unit.
import * as CM from "nicegui-codemirror";

const setRemoteCursor = CM.StateEffect.define();

class CaretWidget extends CM.WidgetType {
  constructor(name, color) {
    super();
    this.name = name;
    this.color = color;
  }
  eq(other) {
    return other.name === this.name && other.color === this.color;
  }
  toDOM() {
    const span = document.createElement("span");
    span.className = "aiq-remote-caret";
    span.style.borderLeft = `2px solid ${this.color}`;
    span.style.marginLeft = "-1px";
    span.style.position = "relative";
    const label = document.createElement("span");
    label.className = "aiq-remote-caret-label";
    label.textContent = this.name;
    label.style.cssText =
      `position:absolute;top:-1.3em;left:-1px;font-size:10px;line-height:1.2em;padding:0 3px;` +
      `white-space:nowrap;color:white;background:${this.color};border-radius:2px;opacity:0.85`;
    span.appendChild(label);
    return span;
  }
  ignoreEvent() {
    return true;
  }
}

// The other person's cursor: {anchor, head, name, color} or null, mapped through every edit.
const remoteCursorField = CM.StateField.define({
  create() {
    return null;
  },
  update(value, tr) {
    for (const effect of tr.effects) if (effect.is(setRemoteCursor)) return effect.value;
    if (value && tr.docChanged) {
      return { ...value, anchor: tr.changes.mapPos(value.anchor, 1), head: tr.changes.mapPos(value.head, 1) };
    }
    return value;
  },
  provide: (field) =>
    CM.EditorView.decorations.compute([field], (state) => {
      const c = state.field(field);
      if (!c) return CM.Decoration.none;
      const len = state.doc.length;
      const anchor = Math.min(c.anchor, len);
      const head = Math.min(c.head, len);
      const ranges = [];
      const from = Math.min(anchor, head);
      const to = Math.max(anchor, head);
      if (from < to) {
        ranges.push(
          CM.Decoration.mark({
            class: "aiq-remote-selection",
            attributes: { style: `background-color:${c.color}33` },
          }).range(from, to),
        );
      }
      ranges.push(CM.Decoration.widget({ widget: new CaretWidget(c.name, c.color), side: 1 }).range(head));
      return CM.Decoration.set(ranges, true);
    }),
});

const remoteAnnotation = CM.Annotation.define();

function toSpecs(changes) {
  const specs = [];
  changes.iterChanges((fromA, toA, _fromB, _toB, inserted) => {
    specs.push({ from: fromA, to: toA, insert: inserted.toString() });
  });
  return specs;
}

export default {
  template: `<div class="aiq-editor" style="height:100%"></div>`,
  props: {
    text: String,
    version: Number,
    language: String,
    readonly: Boolean,
  },
  watch: {
    language(value) {
      this.setLanguage(value);
    },
    readonly(value) {
      this.editor.dispatch({ effects: this.editableConfig.reconfigure(CM.EditorView.editable.of(!value)) });
    },
  },
  mounted() {
    this.confirmed = this.version || 0;
    this.unconfirmed = [];
    this.inflight = 0;
    this.cursorTimer = null;
    this.languageConfig = new CM.Compartment();
    this.editableConfig = new CM.Compartment();
    const self = this;
    const sender = CM.ViewPlugin.fromClass(
      class {
        update(update) {
          const remote = update.transactions.some((tr) => tr.annotation(remoteAnnotation));
          if (update.docChanged && !remote) {
            self.unconfirmed.push(update.changes);
            self.push();
          }
          if (update.selectionSet || update.docChanged) self.scheduleCursor();
        }
      },
    );
    this.editor = new CM.EditorView({
      doc: this.text || "",
      parent: this.$el,
      extensions: [
        CM.basicSetup,
        CM.keymap.of([CM.indentWithTab]),
        remoteCursorField,
        sender,
        this.languageConfig.of([]),
        this.editableConfig.of(CM.EditorView.editable.of(!this.readonly)),
        CM.EditorView.theme({ "&": { height: "100%" }, ".cm-scroller": { overflow: "auto" } }),
      ],
    });
    this.setLanguage(this.language);
    // Tests and the latency benchmark read the editor through this handle.
    this.$el.aiqEditor = this;
    // Updates sent before this browser was connected may be lost: ask for the current text.
    this.$emit("resync", { version: this.confirmed });
  },
  beforeUnmount() {
    if (this.editor) this.editor.destroy();
    clearTimeout(this.cursorTimer);
  },
  methods: {
    setLanguage(name) {
      const wanted = (name || "").toLowerCase();
      const found = CM.languages.find(
        (l) => l.name.toLowerCase() === wanted || l.alias.some((a) => a.toLowerCase() === wanted),
      );
      if (!found) {
        this.editor.dispatch({ effects: this.languageConfig.reconfigure([]) });
        return;
      }
      found.load().then((ext) => this.editor.dispatch({ effects: this.languageConfig.reconfigure([ext]) }));
    },
    push() {
      if (this.inflight || !this.unconfirmed.length) return;
      this.inflight = this.unconfirmed.length;
      this.sendPush({ version: this.confirmed, updates: this.unconfirmed.map(toSpecs) });
    },
    sendPush(payload) {
      this.pushes = (this.pushes || 0) + 1;
      this.$emit("push", payload);
    },
    // Python confirmed `count` of our edits, made on `version`.
    ack(version, count) {
      if (version !== this.confirmed) return;
      this.unconfirmed.splice(0, count);
      this.confirmed += count;
      this.inflight = 0;
      this.push();
      this.scheduleCursor();
    },
    // A remote edit, Python's update number `version` (against the confirmed document).
    remote(version, specs) {
      if (version !== this.confirmed) {
        this.$emit("resync", { version: this.confirmed });
        return;
      }
      const base = this.unconfirmed.length ? this.unconfirmed[0].length : this.editor.state.doc.length;
      let changes = CM.ChangeSet.of(specs, base);
      const rebased = [];
      if (this.unconfirmed.length) this.rebases = (this.rebases || 0) + 1;
      for (const own of this.unconfirmed) {
        rebased.push(own.map(changes));
        changes = changes.map(own, true);
      }
      this.unconfirmed = rebased;
      this.confirmed += 1;
      this.editor.dispatch({ changes, annotations: [remoteAnnotation.of(true), CM.Transaction.addToHistory.of(false)] });
      // Any push in flight was made on an older version: Python refuses it; send the rebased edits.
      this.inflight = 0;
      this.push();
    },
    // Start over from Python's text (after an error, or when the browser fell out of step).
    reset(version, text) {
      this.unconfirmed = [];
      this.inflight = 0;
      this.confirmed = version;
      const sel = this.editor.state.selection.main;
      const len = text.length;
      this.editor.dispatch({
        changes: { from: 0, to: this.editor.state.doc.length, insert: text },
        selection: { anchor: Math.min(sel.anchor, len), head: Math.min(sel.head, len) },
        annotations: [remoteAnnotation.of(true), CM.Transaction.addToHistory.of(false)],
      });
    },
    // The other person's cursor: offsets against confirmed document `version`; null hides it.
    showCursor(version, cursor) {
      if (cursor && version !== this.confirmed) return; // stale; a fresh one follows
      let value = null;
      if (cursor) {
        let { anchor, head } = cursor;
        for (const own of this.unconfirmed) {
          anchor = own.mapPos(anchor, 1);
          head = own.mapPos(head, 1);
        }
        value = { anchor, head, name: cursor.name, color: cursor.color || "#d9480f" };
      }
      this.editor.dispatch({ effects: setRemoteCursor.of(value) });
    },
    scheduleCursor() {
      if (this.cursorTimer) return;
      this.cursorTimer = setTimeout(() => {
        this.cursorTimer = null;
        if (this.unconfirmed.length) return; // sent after the ack, against a confirmed version
        const sel = this.editor.state.selection.main;
        this.$emit("cursor", { version: this.confirmed, anchor: sel.anchor, head: sel.head });
      }, 30);
    },
    getText() {
      return this.editor.state.doc.toString();
    },
    focus() {
      this.editor.focus();
    },
  },
};
