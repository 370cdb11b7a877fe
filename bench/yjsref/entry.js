// The reference editor for bench/bench_typing.py: a Yjs document shared over y-webrtc (peer to
// peer, y-webrtc's own signaling server) and bound to CodeMirror 6 with y-codemirror.next —
// the pure-browser path AssessIQ's editor is measured against. The page's query string names
// the room and the signaling server; `window.yjsref` lets the bench see when the peer is
// connected (the measurement itself reads only the DOM).
import * as Y from 'yjs'
import { WebrtcProvider } from 'y-webrtc'
import { yCollab } from 'y-codemirror.next'
import { EditorView, basicSetup } from 'codemirror'

const params = new URLSearchParams(location.search)
const ydoc = new Y.Doc()
const provider = new WebrtcProvider(params.get('room'), ydoc, {
  signaling: [params.get('signaling')],
  peerOpts: { config: { iceServers: [] } } // no STUN: host candidates only
})
provider.awareness.setLocalStateField('user', { name: params.get('name') || 'peer', color: '#3070b0' })
const ytext = ydoc.getText('code')
const view = new EditorView({
  doc: ytext.toString(),
  extensions: [basicSetup, yCollab(ytext, provider.awareness)],
  parent: document.querySelector('[data-testid=editor]')
})
window.yjsref = {
  provider,
  view,
  peers: () => (provider.room ? provider.room.webrtcConns.size : 0),
  synced: () => Boolean(provider.room && [...provider.room.webrtcConns.values()].some(c => c.synced))
}
