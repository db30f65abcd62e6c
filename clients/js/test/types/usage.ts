import { SwitchboardClient, backoffDelay, ClientError, type Ack, type Message } from '../../src/index.js';
const c = new SwitchboardClient({ url: 'http://x', token: 't', getToken: async ({ reason }) => reason });
c.on('message', (m: Message) => m.seq + 1);
c.on('subscribed', (s) => s.gap);
c.on('state', (s) => s === 'connected');
const p = c.send('id', { text: 'x' });
const id: string = p.clientId;
p.then((a: Ack) => a.duplicate);
c.subscribe('id', { since: 3, epoch: 'e' });
backoffDelay(1, { baseMs: 1 });
const e = new ClientError('x', 'y');
async function f() { for await (const page of c.pages('id')) page.result.map((m) => m.text); }
c.on('status', (f) => f.whatever);
// @ts-expect-error a message is not a number
c.on('message', (m: number) => m);
// @ts-expect-error send needs a conversation id
c.send();
