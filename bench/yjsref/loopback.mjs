// Preloaded into y-webrtc's own signaling server (bin/server.js calls `server.listen(port)`, which
// binds every interface): make every listen without a host bind 127.0.0.1 instead.
import http from 'node:http'

const listen = http.Server.prototype.listen
http.Server.prototype.listen = function (port, ...rest) {
  if ((typeof port === 'number' || typeof port === 'string') && typeof rest[0] !== 'string') {
    return listen.call(this, port, '127.0.0.1', ...rest)
  }
  return listen.call(this, port, ...rest)
}
