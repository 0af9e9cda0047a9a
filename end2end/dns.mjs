// A DNS server for the end-to-end run: answers TXT questions from a JSON file
// ({"name": ["value", ...]}) that tests write to, NXDOMAIN for names not in it. Mandate's
// domain verification asks it (MANDATE_DNS_RESOLVER), as it would ask the internet's DNS.
import dgram from 'node:dgram';
import { readFileSync } from 'node:fs';

function records(file) {
  try { return JSON.parse(readFileSync(file, 'utf8')); } catch { return {}; }
}

function answer(query, file) {
  let at = 12;
  const labels = [];
  while (at < query.length && query[at] !== 0) {
    const len = query[at];
    labels.push(query.subarray(at + 1, at + 1 + len).toString('latin1').toLowerCase());
    at += 1 + len;
  }
  at += 1;
  const questionEnd = at + 4;
  const qtype = query.readUInt16BE(at);
  const values = records(file)[labels.join('.')];
  const answers = qtype === 16 && values ? values : [];
  const header = Buffer.alloc(12);
  query.copy(header, 0, 0, 2);
  header.writeUInt16BE(values ? 0x8180 : 0x8183, 2);
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(answers.length, 6);
  const parts = [header, query.subarray(12, questionEnd)];
  for (const value of answers) {
    const text = Buffer.from(value, 'utf8');
    const rr = Buffer.alloc(12);
    rr.writeUInt16BE(0xc00c, 0);
    rr.writeUInt16BE(16, 2);
    rr.writeUInt16BE(1, 4);
    rr.writeUInt32BE(0, 6);
    rr.writeUInt16BE(text.length + 1, 10);
    parts.push(rr, Buffer.from([text.length]), text);
  }
  return Buffer.concat(parts);
}

// Run as its own process (`node end2end/dns.mjs FILE`; prints the port): the runner waits on
// the tests synchronously and could not answer queries itself.
const file = process.argv[2];
const socket = dgram.createSocket('udp4');
socket.on('message', (msg, rinfo) => {
  try { socket.send(answer(msg, file), rinfo.port, rinfo.address); } catch { /* malformed query: no answer */ }
});
socket.bind(0, '127.0.0.1', () => console.log(socket.address().port));
