// lwm2m-node-lib (a third-party LwM2M 1.0 client) against RosettaMQ's LwM2M server.
// usage: node lwm2m_client.js PORT ENDPOINT
// Prints one JSON line per event: {"registered": "rd/.."}, {"deregistered": true} ({"error": ...} and
// exit 1 on a failure). Closing stdin deregisters and exits. The device has /3/0 with resources 0, 1, 2.
'use strict';
const client = require('lwm2m-node-lib').client;

const [port, endpoint] = process.argv.slice(2);
const say = (event) => process.stdout.write(JSON.stringify(event) + '\n');
const fail = (where, error) => { say({ error: `${where}: ${error}` }); process.exit(1); };

client.init({
  logLevel: 'FATAL',
  client: {
    lifetime: '300', version: '1.0', logLevel: 'FATAL', observe: { period: 3000 },
    ipProtocol: 'udp4', serverProtocol: 'udp4',
    formats: [{ name: 'lightweightm2m/text', value: 1541 }], writeFormat: 'lightweightm2m/text',
  },
});

function create(uri, resources, callback) {
  client.registry.create(uri, (error) => {
    if (error) return callback(error);
    const ids = Object.keys(resources);
    let left = ids.length;
    ids.forEach((id) => client.registry.setResource(uri, id, resources[id], (err) => {
      if (err) return callback(err);
      if (--left === 0) callback(null);
    }));
  });
}

create('/3/0', { 0: 'lwm2m-node-lib maker', 1: 'node-model', 2: 'NODE-0001' }, (error) => {
  if (error) fail('create', error);
  client.register('127.0.0.1', Number(port), null, endpoint, (err, device) => {
    if (err) fail('register', err);
    say({ registered: device.location });
    process.stdin.resume();
    process.stdin.on('end', () => client.unregister(device, (e) => {
      if (e) fail('unregister', e);
      say({ deregistered: true });
      process.exit(0);
    }));
  });
});
