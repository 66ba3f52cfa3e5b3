// Sends metrics to kpid with the OpenTelemetry JS SDK, as an instrumented service would, and
// prints (JSON, on stdout) what it recorded, for tests/integration/otlp_test.cpp to compare with
// what kpid answers.
//
// Usage: node send.mjs ENDPOINT PROTOCOL TEMPORALITY SERVICE TOKEN
//   PROTOCOL: proto (http/protobuf) or json (http/json); TEMPORALITY: cumulative or delta.
// Each of three rounds records measurements and then exports them (forceFlush); an export
// that kpid does not accept makes the script exit 1.

import { metrics } from '@opentelemetry/api';
import { AggregationTemporalityPreference, OTLPMetricExporter as JsonExporter }
  from '@opentelemetry/exporter-metrics-otlp-http';
import { OTLPMetricExporter as ProtoExporter } from '@opentelemetry/exporter-metrics-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { AggregationType, MeterProvider, PeriodicExportingMetricReader }
  from '@opentelemetry/sdk-metrics';

const [endpoint, protocol, temporality, service, token] = process.argv.slice(2);
const options = {
  url: endpoint,
  headers: { Authorization: `Bearer ${token}` },
  temporalityPreference: temporality === 'delta' ? AggregationTemporalityPreference.DELTA
                                                 : AggregationTemporalityPreference.CUMULATIVE,
  compression: 'gzip',
};
const exporter = protocol === 'proto' ? new ProtoExporter(options) : new JsonExporter(options);
// Exports happen when the test says so (forceFlush), not on a timer.
const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3600_000 });
const provider = new MeterProvider({
  resource: resourceFromAttributes({
    'service.name': service,
    'service.instance.id': 'node-1',
  }),
  readers: [reader],
  views: [{
    instrumentName: 'shop.payload.size',
    aggregation: { type: AggregationType.EXPONENTIAL_HISTOGRAM, options: { maxSize: 160 } },
  }],
});
metrics.setGlobalMeterProvider(provider);
const meter = metrics.getMeter('kpid-test', '1.0.0');

const orders = meter.createCounter('shop.orders', { unit: '{order}', description: 'Orders placed' });
const carts = meter.createUpDownCounter('shop.carts.active', { description: 'Open carts' });
const temperature = meter.createGauge('shop.temperature', { unit: 'Cel' });
const duration = meter.createHistogram('shop.request.duration', {
  unit: 's',
  advice: { explicitBucketBoundaries: [0.25, 1, 5] },
});
const payload = meter.createHistogram('shop.payload.size', { unit: 'By' });

const rounds = [
  { orders: [[3, '/cart'], [2, '/pay']], carts: [4, -1], temperature: 21.5,
    durations: [0.1, 0.3, 2], payloads: [100, 2000] },
  { orders: [[7, '/cart']], carts: [-2], temperature: 22.25, durations: [0.2, 7],
    payloads: [150, 150, 90000] },
  { orders: [[1, '/pay']], carts: [5], temperature: 19, durations: [4.5], payloads: [3] },
];
const expected = {
  orders: { '/cart': 0, '/pay': 0 }, carts: 0, temperature: 0,
  duration: { count: 0, sum: 0, le: { '0.25': 0, '1': 0, '5': 0, '+Inf': 0 } },
  payload: { count: 0, sum: 0 },
};
for (const round of rounds) {
  for (const [n, route] of round.orders) {
    orders.add(n, { 'http.route': route });
    expected.orders[route] += n;
  }
  for (const n of round.carts) {
    carts.add(n);
    expected.carts += n;
  }
  temperature.record(round.temperature);
  expected.temperature = round.temperature;
  for (const d of round.durations) {
    duration.record(d);
    expected.duration.count += 1;
    expected.duration.sum += d;
    for (const le of ['0.25', '1', '5']) if (d <= Number(le)) expected.duration.le[le] += 1;
    expected.duration.le['+Inf'] += 1;
  }
  for (const p of round.payloads) {
    payload.record(p);
    expected.payload.count += 1;
    expected.payload.sum += p;
  }
  try {
    await reader.forceFlush();
  } catch (e) {
    console.error(`export failed: ${e && e.stack ? e.stack : e}`);
    process.exit(1);
  }
  // Points of successive rounds must not share a millisecond.
  await new Promise((resolve) => setTimeout(resolve, 20));
}
await provider.shutdown();
console.log(JSON.stringify(expected));
