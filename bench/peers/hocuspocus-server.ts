/** Hocuspocus 3.4 with no extensions (nothing stored). */
import { Server } from '@hocuspocus/server';

const server = new Server({ port: 0, address: '127.0.0.1', quiet: true, stopOnSignals: false });
await server.listen();
console.log(`Listening: ws://127.0.0.1:${server.address.port}`);
process.on('disconnect', () => process.exit(0));
