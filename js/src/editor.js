// The shared editor in the browser: CodeMirror 6 bound to a Yjs document (y-codemirror.next),
// which is a y-sync peer of this person's own AssessIQ process over a local websocket
// (y-websocket's client; the Python end is assessiq/ui/editor.py).
//
// A keystroke is one Yjs update, sent to the local process at once; nothing waits for a
// confirmation. The local process applies it to its document (which records it) and passes
// it on to the other person's process; updates from there come back the same way. The page
// writes with the one client id its process gave it (the process refuses anything else), so
// the record knows whose every character is. Undo and redo are Yjs's, and track only this
// page's own edits. Remote carets come from Yjs awareness.
//
// Built into assessiq/ui/static/yeditor/index.js by scripts/build-js (esbuild).
import { closeBrackets, closeBracketsKeymap } from "@codemirror/autocomplete";
import { defaultKeymap, indentWithTab } from "@codemirror/commands";
import { cpp } from "@codemirror/lang-cpp";
import { java } from "@codemirror/lang-java";
import { javascript } from "@codemirror/lang-javascript";
import { python } from "@codemirror/lang-python";
import {
  bracketMatching,
  defaultHighlightStyle,
  foldGutter,
  HighlightStyle,
  foldKeymap,
  indentOnInput,
  indentUnit,
  syntaxHighlighting,
} from "@codemirror/language";
import { lintKeymap } from "@codemirror/lint";
import { highlightSelectionMatches, searchKeymap } from "@codemirror/search";
import { Compartment, EditorState } from "@codemirror/state";
import {
  EditorView,
  crosshairCursor,
  drawSelection,
  dropCursor,
  highlightActiveLine,
  highlightActiveLineGutter,
  highlightSpecialChars,
  keymap,
  lineNumbers,
  rectangularSelection,
} from "@codemirror/view";
import { tags as t } from "@lezer/highlight";
import { yCollab, yUndoManagerKeymap } from "y-codemirror.next";
import { WebsocketProvider } from "y-websocket";
import * as Y from "yjs";

const LANGUAGES = {
  python: python,
  javascript: javascript,
  js: javascript,
  c: cpp,
  "c++": cpp,
  cpp: cpp,
  java: java,
};

// Indentation per language: what its starters and style guides use (PEP 8's four spaces
// for Python, so auto-indent matches the starter instead of mixing 2 and 4).
const INDENT = { javascript: "  ", js: "  " };

function languageOf(name) {
  const key = (name || "").toLowerCase();
  const make = LANGUAGES[key];
  return [make ? make() : [], indentUnit.of(INDENT[key] || "    ")];
}

function readOnlyOf(flag) {
  return [EditorState.readOnly.of(flag), EditorView.editable.of(!flag)];
}

// Syntax colours for the dark theme: the same tags as CodeMirror's default (light) style, in
// colours that keep 4.5:1 (WCAG AA) on the dark editor and its active line (#1d2125,
// #282c30: ui/room.py), as axe-core checks in tests/test_ui_a11y.py. Used while the page is
// dark (NiceGUI's body--dark class), through CodeMirror's darkTheme facet.
const darkHighlightStyle = HighlightStyle.define([
  { tag: t.meta, color: "#a8b1bb" },
  { tag: t.link, textDecoration: "underline" },
  { tag: t.heading, textDecoration: "underline", fontWeight: "bold" },
  { tag: t.emphasis, fontStyle: "italic" },
  { tag: t.strong, fontWeight: "bold" },
  { tag: t.strikethrough, textDecoration: "line-through" },
  { tag: t.keyword, color: "#ff9492" },
  { tag: [t.atom, t.bool, t.url, t.contentSeparator, t.labelName], color: "#79c0ff" },
  { tag: [t.literal, t.inserted], color: "#7ee2a8" },
  { tag: [t.string, t.deleted], color: "#a5d6ff" },
  { tag: [t.regexp, t.escape, t.special(t.string)], color: "#ffa657" },
  { tag: t.definition(t.variableName), color: "#d2a8ff" },
  { tag: t.local(t.variableName), color: "#c9b8ff" },
  { tag: [t.typeName, t.namespace], color: "#7ee2a8" },
  { tag: t.className, color: "#7ee2a8" },
  { tag: [t.special(t.variableName), t.macroName], color: "#79c0ff" },
  { tag: t.definition(t.propertyName), color: "#d2a8ff" },
  { tag: t.comment, color: "#a8b1bb" },
  { tag: t.invalid, color: "#ff9492" },
], { themeType: "dark" });

const isDark = () => document.body.classList.contains("body--dark");

// CodeMirror's basicSetup without its own history (Yjs's undo manager replaces it) and
// without autocompletion (a popup that takes Enter changes what a typist meant to type).
const setup = [
  lineNumbers(),
  highlightActiveLineGutter(),
  highlightSpecialChars(),
  foldGutter(),
  drawSelection(),
  dropCursor(),
  EditorState.allowMultipleSelections.of(true),
  indentOnInput(),
  syntaxHighlighting(defaultHighlightStyle, { fallback: true }),
  syntaxHighlighting(darkHighlightStyle),
  bracketMatching(),
  closeBrackets(),
  rectangularSelection(),
  crosshairCursor(),
  highlightActiveLine(),
  highlightSelectionMatches(),
  keymap.of([
    ...yUndoManagerKeymap,
    ...closeBracketsKeymap,
    ...defaultKeymap,
    ...searchKeymap,
    ...foldKeymap,
    ...lintKeymap,
    indentWithTab,
  ]),
];

/**
 * Mount the shared editor in `parent`.
 * @param {HTMLElement} parent
 * @param {{url: string, room: string, clientId: number, language: string,
 *          readOnly?: boolean, user: {name: string, color: string, role: string}}} options
 */
export function mountEditor(parent, options) {
  const ydoc = new Y.Doc();
  ydoc.clientID = options.clientId; // the id the local process accepts edits from
  const ytext = ydoc.getText("code");
  const provider = new WebsocketProvider(options.url, options.room, ydoc, { disableBc: true });
  const awareness = provider.awareness;
  const { name, color, role } = options.user;
  awareness.setLocalStateField("role", role);
  awareness.setLocalStateField("user", { name, color, colorLight: color + "33" });
  const undoManager = new Y.UndoManager(ytext);
  const language = new Compartment();
  const readOnly = new Compartment();
  const dark = new Compartment();
  const view = new EditorView({
    parent,
    state: EditorState.create({
      doc: ytext.toString(),
      extensions: [
        setup,
        language.of(languageOf(options.language)),
        readOnly.of(readOnlyOf(!!options.readOnly)),
        dark.of(EditorView.darkTheme.of(isDark())),
        yCollab(ytext, awareness, { undoManager }),
        EditorView.theme({
          "&": { height: "100%" },
          ".cm-scroller": { overflow: "auto" },
          // The other person's name stays shown by their caret, and on the first line it
          // sits below the caret instead of above, where the scroller would cut it off.
          ".cm-ySelectionInfo": { opacity: 1, fontFamily: "sans-serif" },
          ".cm-line:first-child .cm-ySelectionInfo": { top: "1.25em" },
        }),
      ],
    }),
  });
  // The page's theme can change at any time (its toggle): follow it.
  let shownDark = isDark();
  const themeWatch = new MutationObserver(() => {
    if (isDark() === shownDark) return;
    shownDark = isDark();
    view.dispatch({ effects: dark.reconfigure(EditorView.darkTheme.of(shownDark)) });
  });
  themeWatch.observe(document.body, { attributes: true, attributeFilter: ["class"] });
  return {
    editor: view,
    ydoc,
    ytext,
    provider,
    awareness,
    undoManager,
    getText: () => view.state.doc.toString(),
    setLanguage: (name) => view.dispatch({ effects: language.reconfigure(languageOf(name)) }),
    setReadOnly: (flag) => view.dispatch({ effects: readOnly.reconfigure(readOnlyOf(!!flag)) }),
    destroy: () => {
      themeWatch.disconnect();
      view.destroy();
      provider.destroy();
      ydoc.destroy();
    },
  };
}
