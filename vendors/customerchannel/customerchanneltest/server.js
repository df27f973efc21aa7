#!/usr/bin/env node
// Simulated Expertflow "Customer Channel" chat server (Hybrid Chat 3.x Customer API),
// a test peer for connectord's customerchannel adapter.
//
//   node server.js --eio 3|4 [--port N] [--host H] [--ping-interval MS] [--ping-timeout MS] [--stay]
//
// --eio 3 runs the reference socket.io 2.x server (Engine.IO 3), --eio 4 socket.io 4.x
// (Engine.IO 4). One HTTP server carries Socket.IO (path /socket.io/), the vendor REST API
// (/api/customer/...) and the simulator's control API (/_sim/..., see README.md).
//
// Once ready it prints exactly one line, "listening <port>", on stdout; every log line goes
// to stderr. It exits when stdin closes (so a killed test never leaves it behind; --stay
// disables that for runs by hand), and on SIGTERM/SIGINT.
//
// Bad input from a client never crashes it: it is logged to stderr and, on a socket, answered
// with a "simError" event.
'use strict';

const http = require('http');
const crypto = require('crypto');

// ---------------------------------------------------------------------------------------
// Command line

function parseArgs(argv) {
  const o = { eio: 4, port: 0, host: '127.0.0.1', pingInterval: 0, pingTimeout: 0, stay: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) usage(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--eio') o.eio = Number(next());
    else if (a === '--port') o.port = Number(next());
    else if (a === '--host') o.host = next();
    else if (a === '--ping-interval') o.pingInterval = Number(next());
    else if (a === '--ping-timeout') o.pingTimeout = Number(next());
    else if (a === '--stay') o.stay = true;
    else if (a === '-h' || a === '--help') usage('');
    else usage(`unknown argument ${a}`);
  }
  if (o.eio !== 3 && o.eio !== 4) usage('--eio must be 3 or 4');
  if (!Number.isInteger(o.port) || o.port < 0 || o.port > 65535) usage('--port must be 0..65535');
  return o;
}

function usage(msg) {
  if (msg) process.stderr.write(`server.js: ${msg}\n`);
  process.stderr.write('usage: node server.js --eio 3|4 [--port N] [--host H] [--ping-interval MS] [--ping-timeout MS] [--stay]\n');
  process.exit(2);
}

const opts = parseArgs(process.argv.slice(2));

function log(...args) {
  const parts = args.map((a) => (typeof a === 'string' ? a : safeJSON(a)));
  process.stderr.write(`[sim eio${opts.eio} ${new Date().toISOString()}] ${parts.join(' ')}\n`);
}

function safeJSON(v) {
  try {
    return JSON.stringify(v);
  } catch (e) {
    return String(v);
  }
}


const uuid = () => crypto.randomUUID();
const now = () => new Date().toISOString();
const BOT = Object.freeze({ id: 'bot', name: 'Bot' });

// ---------------------------------------------------------------------------------------
// State. Everything here is forgotten by POST /_sim/reset.

let state;
function freshState() {
  return {
    registrations: [], // every registerConnector call: {socketId, id, name, channel, at}
    inits: [], // bodies of accepted POST /api/customer/init
    rejected: [], // {path, status, body} of REST requests refused for bad input
    requests: [], // {method, path, status} of every /api/ request
    transcripts: [], // {conversationId, type, status}
    conversations: new Map(), // id -> conversation (see newConversation)
    campaigns: [], // {id, conversationId, refId, text, channel, deliveredTo: [socketIds], pending}
    // Campaign messages no registered socket took yet, in order: {record, msg}. The vendor does
    // not say what its server does with a campaign while no connector is registered; this one
    // keeps it and hands it to the next socket that registers for its channel.
    pending: [],
    connections: 0, // socket connections ever
    autoAgent: null, // {name, greeting, echo, whisper, joinDelayMs}
    agentSeq: 0, // numbering for agent-<n> participant ids
    fails: new Map(), // path -> {status, times}
    lose: 0, // customer ChatMessages still to lose (POST /_sim/lose)
    timers: new Set(), // pending autoagent timers, cancelled on reset
  };
}
state = freshState();

// Connected sockets, independent of reset: socketId -> {socket, rooms: Set, channel, reg}. channel
// and reg are the socket's latest registerConnector (null when it has not registered since the
// last reset); a socket that disconnects is no longer registered.
const sockets = new Map();
// Raw TCP connections of the HTTP server, for POST /_sim/drop {"mode":"kill"}.
const tcpSockets = new Set();
// While down (POST /_sim/down), the server plays an outage: Engine.IO handshakes and the
// REST API are refused; only the control API answers. Independent of reset.
let down = false;

function newConversation(body, participant) {
  return {
    id: uuid(),
    customerParticipantId: participant.id,
    customer: participant,
    channel: body.channel,
    refId: body.refId,
    createdAt: now(),
    joinedBy: [], // participant ids of joinConversation calls, in order (repeats on rejoin)
    ended: false,
    endedBy: '',
    messages: [], // ChatMessages (customer, agents, whispers), in order, each with an id
    activities: [], // ActivityMessages the client sent (typing, ...)
    agents: [], // participants of agents currently in the conversation; the last is "current"
    auto: null, // {echo, whisper} when the autoagent took the conversation
  };
}

function later(ms, fn) {
  const t = setTimeout(() => {
    state.timers.delete(t);
    guard('timer', fn)();
  }, Math.max(0, ms || 0));
  state.timers.add(t);
}

// guard wraps a handler so that an exception is logged instead of propagating.
function guard(what, fn) {
  return (...args) => {
    try {
      return fn(...args);
    } catch (err) {
      log(`${what} failed:`, String(err && err.stack));
      return undefined;
    }
  };
}

// ---------------------------------------------------------------------------------------
// Messages

function chatMessage(conv, from, text, extra) {
  return Object.assign(
    { type: 'ChatMessage', conversationId: conv.id, id: uuid(), from, to: [], text: text == null ? '' : String(text), timestamp: now() },
    extra || {},
  );
}

function activity(conv, activityType, from, info) {
  return { type: 'ActivityMessage', conversationId: conv.id, id: uuid(), from, to: [], activityType, info: info || {}, timestamp: now() };
}

function toRoom(conv, event, ...args) {
  io.to(conv.id).emit(event, ...args);
}

// agentSays stores an agent ChatMessage and sends it to the conversation's room.
function agentSays(conv, from, text, extra) {
  const m = chatMessage(conv, from, text, extra);
  conv.messages.push(m);
  toRoom(conv, 'messageArrived', m);
  return m;
}

function newAgent(name) {
  state.agentSeq += 1;
  return { id: `agent-${state.agentSeq}`, name: name || `Agent ${state.agentSeq}` };
}

function agentJoins(conv, agent) {
  conv.agents.push(agent);
  toRoom(conv, 'messageArrived', activity(conv, 'participantJoined', agent, { participant: { id: agent.id, name: agent.name } }));
}

function agentLeaves(conv, agent) {
  conv.agents = conv.agents.filter((a) => a.id !== agent.id);
  toRoom(conv, 'messageArrived', activity(conv, 'participantLeft', agent, { participant: { id: agent.id, name: agent.name } }));
}

function endConversation(conv, by, from) {
  if (conv.ended) return false;
  conv.ended = true;
  conv.endedBy = by;
  toRoom(conv, 'messageArrived', activity(conv, 'endOfConversation', from || BOT, { reason: by }));
  return true;
}

function participants(conv) {
  return [
    { id: conv.customer.id, name: conv.customer.name, role: 'customer' },
    { id: BOT.id, name: BOT.name, role: 'bot' },
    ...conv.agents.map((a) => ({ id: a.id, name: a.name, role: 'agent' })),
  ];
}

// ---------------------------------------------------------------------------------------
// Socket.IO server

const server = http.createServer((req, res) => {
  handleHTTP(req, res).catch((err) => {
    log('http handler failed:', String(err && err.stack));
    if (!res.headersSent) sendJSON(res, 500, { error: 'simulator error' });
    else res.end();
  });
});
server.on('connection', (s) => {
  tcpSockets.add(s);
  s.on('close', () => tcpSockets.delete(s));
});
server.on('clientError', (err, s) => {
  log('http client error:', String(err));
  s.destroy();
});

// A handshake refused while down is answered by engine.io itself (403 on polling, 400 on a
// WebSocket upgrade), never with an open packet.
const ioOpts = {
  serveClient: false,
  allowRequest: (req, cb) => (down ? cb('simulated outage', false) : cb(null, true)),
};
if (opts.pingInterval > 0) ioOpts.pingInterval = opts.pingInterval;
if (opts.pingTimeout > 0) ioOpts.pingTimeout = opts.pingTimeout;

// packageVersion reads node_modules/<name>/package.json (socket.io 4 does not export it).
function packageVersion(name) {
  try {
    return JSON.parse(require('fs').readFileSync(require('path').join(__dirname, 'node_modules', name, 'package.json'), 'utf8')).version;
  } catch (err) {
    return 'unknown';
  }
}

let io;
let ioVersion;
if (opts.eio === 3) {
  io = require('socket.io-v2')(server, ioOpts);
  ioVersion = packageVersion('socket.io-v2');
} else {
  const { Server } = require('socket.io-v4');
  io = new Server(server, ioOpts);
  ioVersion = packageVersion('socket.io-v4');
}

// parsePayload accepts an event payload as an object or as a JSON string of an object.
function parsePayload(data) {
  if (typeof data === 'string') {
    try {
      data = JSON.parse(data);
    } catch (err) {
      throw new BadInput('payload is a string but not JSON');
    }
  }
  if (data === null || typeof data !== 'object' || Array.isArray(data)) throw new BadInput('payload is not a JSON object');
  return data;
}

class BadInput extends Error {
  constructor(message, code, extra) {
    super(message);
    this.code = code || 'badPayload';
    this.extra = extra || {};
  }
}

function str(v) {
  return typeof v === 'string' ? v : v == null ? '' : String(v);
}

io.on('connection', (socket) => {
  state.connections += 1;
  const entry = { socket, rooms: new Set(), channel: null, reg: null };
  sockets.set(socket.id, entry);
  log(`socket ${socket.id} connected (${sockets.size} connected)`);

  // on registers an event handler that parses the payload, answers an ack callback if the
  // client asked for one, and turns any failure into a simError event.
  const on = (event, fn) => {
    socket.on(event, (...args) => {
      const ack = typeof args[args.length - 1] === 'function' ? args.pop() : null;
      try {
        const payload = parsePayload(args[0]);
        const result = fn(payload) || { ok: true };
        if (ack) ack(result);
      } catch (err) {
        const code = err instanceof BadInput ? err.code : 'internal';
        log(`socket ${socket.id} ${event}: ${code}: ${err.message}; args=${safeJSON(args)}`);
        const e = Object.assign({ event, code, message: String(err.message) }, err.extra || {});
        socket.emit('simError', e);
        if (ack) {
          try {
            ack({ ok: false, error: e });
          } catch (ackErr) {
            log('ack failed:', String(ackErr));
          }
        }
      }
    });
  };

  on('registerConnector', (p) => {
    const reg = { socketId: socket.id, id: str(p.id), name: str(p.name), channel: str(p.channel), at: now() };
    state.registrations.push(reg);
    entry.channel = reg.channel;
    entry.reg = reg;
    log(`socket ${socket.id} registerConnector`, reg);
    deliverPending(socket.id, entry);
  });

  on('joinConversation', (p) => {
    const conv = state.conversations.get(str(p.conversationId));
    if (!conv) throw new BadInput(`unknown conversation ${safeJSON(p.conversationId)}`, 'unknownConversation', { conversationId: p.conversationId });
    const firstJoin = conv.joinedBy.length === 0;
    conv.joinedBy.push(str(p.id));
    socket.join(conv.id);
    entry.rooms.add(conv.id);
    log(`socket ${socket.id} joined ${conv.id} as ${safeJSON(p.id)}`);
    if (!conv.ended) socket.emit('messageArrived', activity(conv, 'greetings', BOT, {}));
    socket.emit('conversationInfo', {
      conversation: {
        id: conv.id,
        customer: conv.customer,
        channel: conv.channel,
        refId: conv.refId,
        state: conv.ended ? 'ENDED' : 'ACTIVE',
        createdAt: conv.createdAt,
      },
      messages: conv.messages.slice(),
      participants: participants(conv),
      role: 'customer',
    });
    // A rejoin of a conversation that ended meanwhile: say so again.
    if (conv.ended) socket.emit('messageArrived', activity(conv, 'endOfConversation', BOT, { reason: conv.endedBy }));
    const aa = state.autoAgent;
    if (firstJoin && aa && !conv.ended && conv.agents.length === 0 && !conv.auto) {
      conv.auto = { echo: aa.echo, whisper: aa.whisper };
      later(aa.joinDelayMs, () => {
        if (conv.ended || !state.conversations.has(conv.id)) return;
        const agent = newAgent(aa.name);
        agentJoins(conv, agent);
        if (aa.greeting) agentSays(conv, agent, aa.greeting);
        // An agent reads what the customer wrote before they joined and
        // answers it, as a person picking up a queued chat would.
        const waiting = conv.messages.filter((m) => m.from && m.from.id === conv.customerParticipantId);
        for (const m of waiting) {
          if (conv.auto.whisper) agentSays(conv, agent, `whisper: ${str(m.text)}`, { tag: 'whisper' });
          if (conv.auto.echo) agentSays(conv, agent, `echo: ${str(m.text)}`);
        }
      });
    }
  });

  on('sendMessage', (p) => {
    const conv = state.conversations.get(str(p.conversationId));
    if (!conv) throw new BadInput(`unknown conversation ${safeJSON(p.conversationId)}`, 'unknownConversation', { conversationId: p.conversationId });
    if (p.type === 'ActivityMessage') {
      conv.activities.push(Object.assign({}, p, { receivedAt: now() }));
      return { ok: true };
    }
    if (p.type !== 'ChatMessage') throw new BadInput(`unknown message type ${safeJSON(p.type)}`, 'unknownType');
    if (conv.ended) throw new BadInput(`conversation ${conv.id} has ended`, 'conversationEnded', { conversationId: conv.id });
    if (state.lose > 0) {
      // A server that dies holding the message: not stored, not echoed, and
      // the sender's TCP connection destroyed without a close frame.
      state.lose--;
      log(`socket ${socket.id} lost ${safeJSON(p.id)} and its connection`);
      const tcp = socket.request && socket.request.socket;
      if (tcp) tcp.destroy();
      else socket.conn.close();
      return { ok: false, error: 'lost' };
    }
    const m = Object.assign({}, p);
    if (!m.id) m.id = uuid();
    if (!m.timestamp) m.timestamp = now();
    conv.messages.push(m);
    toRoom(conv, 'messageArrived', m); // includes the sender: the spec's echo
    const agent = conv.agents[conv.agents.length - 1];
    if (conv.auto && agent) {
      const text = str(m.text);
      setImmediate(
        guard('autoagent answer', () => {
          if (conv.ended || !state.conversations.has(conv.id)) return;
          if (conv.auto.whisper) agentSays(conv, agent, `whisper: ${text}`, { tag: 'whisper' });
          if (conv.auto.echo) agentSays(conv, agent, `echo: ${text}`);
        }),
      );
    }
    return { ok: true, id: m.id };
  });

  on('endConversation', (p) => {
    const conv = state.conversations.get(str(p.conversationId));
    if (!conv) throw new BadInput(`unknown conversation ${safeJSON(p.conversationId)}`, 'unknownConversation', { conversationId: p.conversationId });
    endConversation(conv, 'customer', BOT);
  });

  socket.on('disconnect', (reason) => {
    sockets.delete(socket.id);
    log(`socket ${socket.id} disconnected: ${reason}`);
  });
  socket.on('error', (err) => log(`socket ${socket.id} error:`, String(err)));
});

// ---------------------------------------------------------------------------------------
// HTTP: vendor REST API and control API

function sendJSON(res, status, body) {
  const data = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(data) });
  res.end(data);
}

function readBody(req, limit = 1 << 20) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > limit) {
        reject(new BadInput('body too large'));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

async function readJSON(req) {
  const text = await readBody(req);
  if (text.trim() === '') return {};
  let v;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new BadInput(`body is not JSON: ${err.message}`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new BadInput('body is not a JSON object');
  return v;
}

// takeFailure returns the injected status for this path, if any is left.
function takeFailure(path) {
  for (const key of [path, ...prefixesOf(path)]) {
    const f = state.fails.get(key);
    if (f && f.times > 0) {
      f.times -= 1;
      if (f.times === 0) state.fails.delete(key);
      return f.status;
    }
  }
  return 0;
}

function prefixesOf(path) {
  // "/api/customer/transcript/*" matches "/api/customer/transcript/x/pdf".
  const out = [];
  const parts = path.split('/');
  for (let i = parts.length - 1; i > 0; i--) out.push(parts.slice(0, i).join('/') + '/*');
  return out;
}

async function handleHTTP(req, res) {
  const url = new URL(req.url, 'http://sim');
  const path = url.pathname;
  if (path.startsWith('/_sim/')) return handleControl(req, res, path);
  if (path.startsWith('/api/')) {
    const status = down ? reply(res, 503, { error: 'simulated outage' }) : await handleAPI(req, res, path);
    state.requests.push({ method: req.method, path, status });
    return undefined;
  }
  return sendJSON(res, 404, { error: 'not found' });
}

// handleAPI serves the vendor's REST API and returns the status it answered.
async function handleAPI(req, res, path) {
  const injected = takeFailure(path);
  if (injected) {
    req.resume();
    log(`${req.method} ${path}: injected ${injected}`);
    sendJSON(res, injected, { error: 'injected failure', status: injected });
    return injected;
  }

  if (path === '/api/customer/init') {
    if (req.method !== 'POST') return reply(res, 405, { error: 'method not allowed' });
    let body;
    try {
      body = await readJSON(req);
    } catch (err) {
      state.rejected.push({ path, status: 400, body: null, error: err.message });
      return reply(res, 400, { error: err.message });
    }
    if (typeof body.channel !== 'string' || body.channel.trim() === '') {
      state.rejected.push({ path, status: 400, body, error: 'channel is required' });
      log('init without channel:', body);
      return reply(res, 400, { error: 'channel is required' });
    }
    state.inits.push(body);
    const name = [body.firstName, body.lastName].filter((x) => typeof x === 'string' && x !== '').join(' ') || str(body.refId || body.phone) || 'Customer';
    const participant = { id: uuid(), name };
    const conv = newConversation(body, participant);
    state.conversations.set(conv.id, conv);
    log(`init: conversation ${conv.id} for ${safeJSON(name)} on ${body.channel}`);
    return reply(res, 200, {
      conversationId: conv.id,
      participant,
      requestId: body.requestId != null ? body.requestId : uuid(),
      timestamp: now(),
    });
  }

  const m = /^\/api\/customer\/transcript\/([^/]+)\/([^/]+)$/.exec(path);
  if (m) {
    const id = decodeURIComponent(m[1]);
    const type = decodeURIComponent(m[2]);
    const record = (status) => {
      state.transcripts.push({ conversationId: id, type, status });
      return status;
    };
    if (req.method !== 'GET') return record(reply(res, 405, { error: 'method not allowed' }));
    const conv = state.conversations.get(id);
    if (!conv) return record(reply(res, 404, { error: 'conversation not found' }));
    if (!conv.ended) return record(reply(res, 404, { error: 'conversation is still active' }));
    if (type === 'pdf') {
      const pdf = fakePDF(conv);
      res.writeHead(200, { 'Content-Type': 'application/pdf', 'Content-Length': pdf.length });
      res.end(pdf);
      return record(200);
    }
    if (type === 'email') {
      res.writeHead(200, { 'Content-Length': 0 });
      res.end();
      return record(200);
    }
    return record(reply(res, 400, { error: `unknown transcript type ${type}` }));
  }

  return reply(res, 404, { error: 'not found' });
}

function reply(res, status, body) {
  sendJSON(res, status, body);
  return status;
}

// fakePDF is a tiny, syntactically plausible PDF naming the conversation.
function fakePDF(conv) {
  const text = `Transcript ${conv.id} (${conv.messages.length} messages)`.replace(/[()\\]/g, '');
  return Buffer.from(
    `%PDF-1.4\n% simulated transcript\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n` +
      `2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\n% ${text}\ntrailer << /Root 1 0 R >>\n%%EOF\n`,
    'latin1',
  );
}

// ---------------------------------------------------------------------------------------
// Control API (/_sim/...). JSON in, JSON out; errors are {"error": "..."} with 400/404.

async function handleControl(req, res, path) {
  let body = {};
  try {
    if (req.method === 'POST') body = await readJSON(req);
    else if (req.method !== 'GET') return sendJSON(res, 405, { error: 'method not allowed' });
    const out = control(req.method, path, body, req);
    if (out === undefined) return sendJSON(res, 404, { error: `no control endpoint ${req.method} ${path}` });
    return sendJSON(res, 200, out);
  } catch (err) {
    if (err instanceof BadInput) {
      log(`control ${path}: ${err.message}; body=${safeJSON(body)}`);
      return sendJSON(res, 400, { error: err.message });
    }
    throw err;
  }
}

function need(cond, msg) {
  if (!cond) throw new BadInput(msg);
}

function control(method, path, b, req) {
  const key = `${method} ${path}`;
  switch (key) {
    case 'GET /_sim/state':
      return snapshot();
    case 'POST /_sim/reset':
      return reset();
    case 'POST /_sim/autoagent':
      if (b.disable) {
        state.autoAgent = null;
        return { ok: true };
      }
      need(typeof b.name === 'string' && b.name !== '', 'name is required');
      state.autoAgent = {
        name: b.name,
        greeting: str(b.greeting),
        echo: Boolean(b.echo),
        whisper: Boolean(b.whisper),
        joinDelayMs: Number(b.joinDelayMs) || 0,
      };
      return { ok: true };
    case 'POST /_sim/agent':
      return agentAction(b);
    case 'POST /_sim/campaign':
      return campaign(b);
    case 'POST /_sim/drop':
      return drop(b, req.socket);
    case 'POST /_sim/down':
      need(typeof b.down === 'boolean', 'down must be true or false');
      return setDown(b.down, req.socket);
    case 'POST /_sim/fail':
      need(typeof b.path === 'string' && b.path.startsWith('/'), 'path must start with /');
      need(Number.isInteger(b.status) && b.status >= 100 && b.status <= 599, 'status must be an HTTP status');
      need(b.times === undefined || (Number.isInteger(b.times) && b.times >= 0), 'times must be a non-negative integer');
      state.fails.set(b.path, { status: b.status, times: b.times === undefined ? 1 : b.times });
      if (b.times === 0) state.fails.delete(b.path);
      return { ok: true };
    case 'POST /_sim/lose':
      need(Number.isInteger(b.times) && b.times >= 0, 'times must be a non-negative integer');
      state.lose = b.times;
      return { ok: true };
    case 'POST /_sim/forget':
      need(b.conversationId === undefined || typeof b.conversationId === 'string', 'conversationId must be a string');
      return forget(str(b.conversationId));
    case 'GET /_sim/info':
      return { eio: opts.eio, socketIo: ioVersion, node: process.version };
    default:
      return undefined;
  }
}

function snapshot() {
  return {
    eio: opts.eio,
    socketIo: ioVersion,
    connectors: state.registrations.map((r) => Object.assign({}, r, { connected: sockets.has(r.socketId) })),
    registered: Array.from(sockets.values())
      .filter((e) => e.reg !== null)
      .map((e) => Object.assign({}, e.reg, { connected: true })),
    inits: state.inits,
    rejected: state.rejected,
    requests: state.requests,
    transcripts: state.transcripts,
    conversations: Array.from(state.conversations.values()).map((c) => ({
      id: c.id,
      customerParticipantId: c.customerParticipantId,
      channel: c.channel,
      refId: c.refId,
      joinedBy: c.joinedBy,
      ended: c.ended,
      endedBy: c.endedBy,
      agents: c.agents,
      messages: c.messages,
      activities: c.activities,
    })),
    campaigns: state.campaigns,
    connected: Array.from(sockets.keys()),
    connections: state.connections,
    down,
  };
}

function reset() {
  for (const t of state.timers) clearTimeout(t);
  // Sockets stay connected but leave every conversation room and forget their registration.
  for (const e of sockets.values()) {
    for (const room of e.rooms) e.socket.leave(room);
    e.rooms.clear();
    e.channel = null;
    e.reg = null;
  }
  state = freshState();
  log('reset');
  return { ok: true };
}

function agentAction(b) {
  need(typeof b.action === 'string', 'action is required');
  if (b.action === 'raw') {
    // The payload goes out as is: object, JSON string, garbage string, number, null. Without
    // a "payload" key the event has no argument at all.
    const event = typeof b.event === 'string' && b.event !== '' ? b.event : 'messageArrived';
    const args = Object.prototype.hasOwnProperty.call(b, 'payload') ? [b.payload] : [];
    const conv = state.conversations.get(str(b.conversationId));
    if (conv) io.to(conv.id).emit(event, ...args);
    else io.emit(event, ...args); // every connected socket
    return { ok: true };
  }
  const conv = state.conversations.get(str(b.conversationId));
  if (!conv) throw new BadInput(`unknown conversation ${safeJSON(b.conversationId)}`);
  const current = conv.agents[conv.agents.length - 1];
  // speaker: the named agent in the conversation, else the current agent, else a new
  // participant that has not joined (an agent speaking without a participantJoined).
  const speaker = () => (b.name ? conv.agents.find((a) => a.name === b.name) : current) || newAgent(b.name);
  const extra = {};
  if (Array.isArray(b.attachments) && b.attachments.length) extra.attachments = b.attachments;
  switch (b.action) {
    case 'join': {
      const agent = newAgent(b.name);
      agentJoins(conv, agent);
      return { ok: true, participant: agent };
    }
    case 'say': {
      const m = agentSays(conv, speaker(), b.text, extra);
      return { ok: true, id: m.id };
    }
    case 'whisper': {
      const m = agentSays(conv, speaker(), b.text, Object.assign(extra, { tag: 'whisper' }));
      return { ok: true, id: m.id };
    }
    case 'typing':
      toRoom(conv, 'messageArrived', activity(conv, 'typing', speaker(), { typing: Boolean(b.typing) }));
      return { ok: true };
    case 'transfer': {
      if (current) agentLeaves(conv, current);
      const agent = newAgent(b.name);
      agentJoins(conv, agent);
      return { ok: true, participant: agent };
    }
    case 'leave': {
      const agent = b.name ? conv.agents.find((a) => a.name === b.name) : current;
      need(agent, 'no agent in the conversation to leave');
      agentLeaves(conv, agent);
      return { ok: true, participant: agent };
    }
    case 'end':
      endConversation(conv, 'agent', current || BOT);
      return { ok: true };
    case 'noagent':
      toRoom(conv, 'messageArrived', activity(conv, 'noAgentAvailable', BOT, {}));
      return { ok: true };
    case 'activity':
      need(typeof b.activityType === 'string' && b.activityType !== '', 'activityType is required');
      toRoom(
        conv,
        'messageArrived',
        activity(conv, b.activityType, b.name ? speaker() : current || BOT, b.info && typeof b.info === 'object' ? b.info : {}),
      );
      return { ok: true };
    default:
      throw new BadInput(`unknown action ${safeJSON(b.action)}`);
  }
}

function campaign(b) {
  need(typeof b.refId === 'string' && b.refId !== '', 'refId is required');
  const id = typeof b.id === 'string' && b.id !== '' ? b.id : uuid();
  const channel = str(b.channel);
  const msg = {
    type: 'ChatMessage',
    conversationId: uuid(), // a conversation nobody joined
    id,
    refId: b.refId,
    text: str(b.text),
    from: { id: 'campaign', name: 'Campaign' },
    to: [],
    timestamp: now(),
  };
  const deliveredTo = [];
  for (const [sid, e] of sockets) {
    if (!takes(e, channel)) continue;
    e.socket.emit('messageArrived', msg);
    deliveredTo.push(sid);
  }
  const record = { id, conversationId: msg.conversationId, refId: b.refId, text: msg.text, channel, deliveredTo, pending: deliveredTo.length === 0 };
  state.campaigns.push(record);
  if (record.pending) state.pending.push({ record, msg });
  log(`campaign ${id} to ${deliveredTo.length} socket(s)${record.pending ? ' (kept until a connector registers)' : ''}`);
  return { id, conversationId: msg.conversationId, deliveredTo, pending: record.pending };
}

// takes reports whether socket entry e is a registered connector for a campaign on channel ('':
// any registered connector).
function takes(e, channel) {
  return e.channel !== null && (channel === '' || e.channel === channel);
}

// deliverPending hands the socket that just registered every kept campaign for its channel, in
// the order they were started.
function deliverPending(sid, e) {
  const keep = [];
  for (const p of state.pending) {
    if (!takes(e, p.record.channel)) {
      keep.push(p);
      continue;
    }
    e.socket.emit('messageArrived', p.msg);
    p.record.deliveredTo.push(sid);
    p.record.pending = false;
    log(`campaign ${p.record.id} (kept) to socket ${sid}`);
  }
  state.pending = keep;
}

function drop(b, spare) {
  const mode = str(b.mode) || 'disconnect';
  const list = Array.from(sockets.values());
  switch (mode) {
    case 'disconnect': // Socket.IO disconnect packet, then the transport closes
      for (const e of list) e.socket.disconnect(true);
      break;
    case 'close': // Engine.IO closes the transport without a Socket.IO disconnect
      for (const e of list) e.socket.conn.close();
      break;
    case 'kill': {
      // Every TCP connection of the server (except this control request's) is destroyed:
      // no close frame, no packet, like a crashed peer or a cut network.
      for (const s of tcpSockets) if (s !== spare) s.destroy();
      break;
    }
    default:
      throw new BadInput('mode must be disconnect, close or kill');
  }
  log(`drop ${mode}: ${list.length} socket(s)`);
  return { ok: true, dropped: list.length };
}

// forget drops one conversation (every one when id is empty) as a server restarted without
// keeping its chats would: the room is emptied, and from now on the conversation is unknown
// (a join gets only simError, no conversationInfo; a message is refused). Connections stay up.
function forget(id) {
  const ids = id === '' ? Array.from(state.conversations.keys()) : [id];
  need(ids.every((c) => state.conversations.has(c)), `unknown conversation ${safeJSON(id)}`);
  for (const c of ids) {
    for (const e of sockets.values()) {
      if (e.rooms.delete(c)) e.socket.leave(c);
    }
    state.conversations.delete(c);
  }
  log(`forgot ${ids.length} conversation(s)`);
  return { ok: true, forgotten: ids.length };
}

// setDown starts or ends an outage. Going down ends every Engine.IO session (a polling
// client's next request meets an unknown sid) and cuts every TCP connection but this control
// request's (a WebSocket client sees its connection die at once); until the outage ends,
// handshakes and REST requests are refused.
function setDown(on, spare) {
  down = on;
  let dropped = 0;
  if (on) {
    for (const e of Array.from(sockets.values())) {
      e.socket.conn.close();
      dropped += 1;
    }
    for (const s of tcpSockets) if (s !== spare) s.destroy();
  }
  log(`outage ${on ? 'begins' : 'ends'}: ${dropped} socket(s) dropped`);
  return { ok: true, down, dropped };
}

// ---------------------------------------------------------------------------------------
// Start and stop

let stopping = false;
function stop(why) {
  if (stopping) return;
  stopping = true;
  log(`stopping: ${why}`);
  for (const t of state.timers) clearTimeout(t);
  for (const s of tcpSockets) s.destroy();
  try {
    io.close();
  } catch (err) {
    log('io.close:', String(err));
  }
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 500).unref();
}

process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));
if (!opts.stay) {
  process.stdin.on('end', () => stop('stdin closed'));
  process.stdin.on('close', () => stop('stdin closed'));
  process.stdin.on('error', () => stop('stdin error'));
  process.stdin.resume();
}

server.on('error', (err) => {
  log('server error:', String(err));
  process.exit(1);
});
server.listen(opts.port, opts.host, () => {
  const port = server.address().port;
  log(`socket.io ${ioVersion} (Engine.IO ${opts.eio}) on http://${opts.host}:${port}`);
  process.stdout.write(`listening ${port}\n`);
  // From now on a bug in this file must not take the server down in the middle of a test
  // run (before this point, failing to start must exit so that the caller sees it).
  process.on('uncaughtException', (err) => log('uncaught exception (carrying on):', String(err && err.stack)));
  process.on('unhandledRejection', (err) => log('unhandled rejection (carrying on):', String(err && err.stack)));
});
