// Remote write out: the queue's records and bounds, the encoded bodies (decoded back with kpid's
// own remote write decoder), how answers are classified, and senders against a scripted
// receiver (429 with Retry-After, 5xx, 400, 415).

#include <catch2/catch.hpp>

#include <chrono>
#include <map>
#include <thread>

#include "kpid/forward/encode.h"
#include "kpid/forward/forwarder.h"
#include "kpid/forward/queue.h"
#include "kpid/forward/retry.h"
#include "kpid/ingest/remote_write.h"
#include "support/failing_state_store.h"
#include "support/recording_receiver.h"
#include "support/temp_dir.h"
#include "support/test_store.h"

using namespace kpid;
using namespace kpid::forward;

namespace {

store::SeriesId resolve(store::SampleStore& s, const char* name, const char* job) {
  LabelsBuilder b;
  b.add("__name__", name);
  b.add("job", job);
  REQUIRE(b.finish().empty());
  auto id = s.resolve(b.key());
  REQUIRE(id.is_ok());
  return *id;
}

// "name{labels} value" of every sample in a decoded body, in body order.
std::vector<std::string> decode(const std::string& body, ingest::RemoteWriteVersion v) {
  ingest::RemoteWriteDecoder decoder;
  ingest::RemoteWriteRequest request;
  auto s = decoder.decode(body, v, {}, request);
  INFO(s.to_string());
  REQUIRE(s.is_ok());
  REQUIRE(request.rejected.empty());
  std::vector<std::string> out;
  for (const auto& series : request.series) {
    std::string labels;
    for (const auto& l : series.labels) {
      labels += std::string(l.name) + "=" + std::string(l.value) + ",";
    }
    for (const auto& sample : series.samples) {
      out.push_back(labels + " " + std::to_string(sample.timestamp_ms) + " " +
                    std::to_string(sample.value));
    }
  }
  return out;
}

// The value of a metric line in a scrape ("name{labels}"), or -1.
double metric(metrics::Metrics& m, const std::string& series) {
  const std::string text = m.scrape();
  const size_t at = text.find(series + " ");
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + series.size() + 1));
}

template <typename F>
bool eventually(F done, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return done();
}

RemoteWriteOptions destination(const std::string& name, const std::string& url) {
  RemoteWriteOptions o;
  o.name = name;
  o.url = url + "/api/v1/write";
  o.timeout = 2'000;
  o.queue.batch_send_deadline = 20;
  o.queue.min_backoff = 10;
  o.queue.max_backoff = 100;
  return o;
}

}  // namespace

TEST_CASE("forward: encoded 1.0 and 2.0 bodies decode to the same series in order") {
  std::map<store::SeriesId, Labels> labels;
  labels[7] = *Labels::from({{"__name__", "up"}, {"job", "api"}});
  labels[9] = *Labels::from({{"__name__", "errors_total"}, {"code", "500"}, {"job", "api"}});
  const LabelsOf lookup = [&](store::SeriesId id) -> std::shared_ptr<const Labels> {
    auto it = labels.find(id);
    return it == labels.end() ? nullptr : std::make_shared<const Labels>(it->second);
  };
  const std::vector<store::Sample> samples = {
      {7, 1000, 1}, {7, 2000, 0}, {9, 1000, 3.5}, {4, 1000, 1}, {9, -5, 1e300}};
  const std::vector<std::string> expected = {
      "__name__=up,job=api, 1000 1.000000", "__name__=up,job=api, 2000 0.000000",
      "__name__=errors_total,code=500,job=api, 1000 3.500000",
      "__name__=errors_total,code=500,job=api, -5 " + std::to_string(1e300)};
  Encoder encoder;
  size_t skipped = 0;
  CHECK(decode(encoder.encode(samples, lookup, WireVersion::k1, skipped),
               ingest::RemoteWriteVersion::kV1) == expected);
  CHECK(skipped == 1);  // series 4 has no labels
  skipped = 0;
  CHECK(decode(encoder.encode(samples, lookup, WireVersion::k2, skipped),
               ingest::RemoteWriteVersion::kV2) == expected);
  CHECK(skipped == 1);
  // The encoder's buffers are reused: a second, smaller body is not polluted by the first.
  CHECK(decode(encoder.encode(std::span(samples).first(1), lookup, WireVersion::k2, skipped),
               ingest::RemoteWriteVersion::kV2) == std::vector{expected[0]});
  CHECK(content_type(WireVersion::k2) ==
        "application/x-protobuf;proto=io.prometheus.write.v2.Request");
}

TEST_CASE("forward: queue records survive a reload and the drop policy takes the oldest first") {
  testing::TempDir dir;
  SystemClock clock;
  auto db = testing::open_test_store(dir.path(), clock);
  QueueOptions options;
  options.max_bytes = 3 * (12 + 24 * 10);  // three records of ten samples
  options.max_age = 60'000;
  Queue queue("vm", options);
  REQUIRE(queue.load(*db).is_ok());
  std::vector<store::Sample> samples;
  for (int i = 0; i < 10; ++i) samples.push_back({1, i, static_cast<double>(i)});
  auto put = [&](TimestampMs at) {
    std::pair<std::string, std::string> kv;
    kv.first = queue.reserve_key();
    encode_record(at, samples, kv.second);
    REQUIRE(db->write_state(std::span(&kv, 1)).is_ok());
    queue.committed(at, 10, static_cast<uint32_t>(kv.second.size()));
  };
  put(1'000);
  put(2'000);
  put(3'000);
  CHECK(queue.drop_full().records == 0);
  put(4'000);
  CHECK(queue.pending_samples() == 40);
  // Being sent, the oldest cannot be dropped: the next one goes.
  auto keys = queue.take(15);
  CHECK(keys.size() == 1);
  Dropped full = queue.drop_full();
  CHECK(full.records == 1);
  CHECK(full.samples == 10);
  REQUIRE(db->write_state({}, full.keys).is_ok());
  CHECK(queue.oldest() == 1'000);
  // A stop before the acknowledgement: the record is pending again, and a reload finds the rest.
  queue.requeue();
  Queue reloaded("vm", options);
  REQUIRE(reloaded.load(*db).is_ok());
  CHECK(reloaded.pending_samples() == 30);
  CHECK(reloaded.oldest() == 1'000);
  auto again = reloaded.take(100);
  CHECK(again.size() == 3);
  std::vector<store::Sample> read;
  for (const auto& key : again) {
    auto value = db->get_state(key);
    REQUIRE(value.is_ok());
    REQUIRE(value->has_value());
    TimestampMs enqueued = 0;
    REQUIRE(decode_record(**value, enqueued, read).is_ok());
  }
  CHECK(read.size() == 30);
  CHECK(read[9].timestamp == 9);
  CHECK(read[9].value == 9.0);
  REQUIRE(db->write_state({}, reloaded.finished()).is_ok());
  CHECK(reloaded.pending_samples() == 0);
  // Older than max_age.
  Queue aged("vm", options);
  REQUIRE(aged.load(*db).is_ok());
  CHECK(aged.records() == 0);
  std::pair<std::string, std::string> kv{aged.reserve_key(), ""};
  encode_record(1'000, samples, kv.second);
  REQUIRE(db->write_state(std::span(&kv, 1)).is_ok());
  aged.committed(1'000, 10, static_cast<uint32_t>(kv.second.size()));
  CHECK(aged.drop_old(61'000).records == 0);
  CHECK(aged.drop_old(61'001).samples == 10);
  TimestampMs t = 0;
  std::vector<store::Sample> out;
  CHECK_FALSE(decode_record("short", t, out).is_ok());
}

TEST_CASE("forward: answers are classified and retries wait as the receiver asks") {
  CHECK(classify(200, false) == Verdict::kSent);
  CHECK(classify(204, true) == Verdict::kSent);
  CHECK(classify(0, false) == Verdict::kRetry);
  CHECK(classify(429, false) == Verdict::kRetry);
  CHECK(classify(500, false) == Verdict::kRetry);
  CHECK(classify(503, true) == Verdict::kRetry);
  CHECK(classify(400, false) == Verdict::kRefused);
  CHECK(classify(404, true) == Verdict::kRefused);
  CHECK(classify(415, true) == Verdict::kUnsupported);
  CHECK(classify(415, false) == Verdict::kRefused);
  CHECK(parse_retry_after("7", 0) == 7'000);
  CHECK(parse_retry_after(" 0 ", 0) == 0);
  CHECK(parse_retry_after("", 0) == std::nullopt);
  CHECK(parse_retry_after("-1", 0) == std::nullopt);
  CHECK(parse_retry_after("soon", 0) == std::nullopt);
  // 784111777 s is Sun, 06 Nov 1994 08:49:37 GMT.
  CHECK(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 784'111'770'000) == 7'000);
  CHECK(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 784'111'800'000) == 0);
  for (int attempt = 0; attempt < 40; ++attempt) {
    for (double unit : {0.0, 0.5, 0.999}) {
      const DurationMs d = backoff_delay(attempt, 100, 30'000, unit);
      CHECK(d >= 100);
      CHECK(d <= 30'000);
    }
  }
  CHECK(backoff_delay(0, 100, 30'000, 0.999) == 100);
  CHECK(backoff_delay(3, 100, 30'000, 0.999) >= 790);
  CHECK(backoff_delay(30, 100, 30'000, 0.999) >= 29'900);
}

TEST_CASE(
    "forward: a sender retries 429 after Retry-After and 5xx, drops a 400, falls back on 415") {
  testing::TempDir dir;
  SystemClock clock;
  auto db = testing::open_test_store(dir.path(), clock);
  metrics::Metrics m;
  testing::RecordingReceiver receiver;
  testing::RecordingReceiver v1_only;
  auto rw = destination("sink", receiver.url());
  auto v2 = destination("v2", v1_only.url());
  v2.protocol = "2.0";
  auto forwarder = Forwarder::create({rw, v2}, *db, *db, m, clock);
  REQUIRE(forwarder.is_ok());
  Forwarder& f = **forwarder;
  REQUIRE(f.load().is_ok());
  const store::SeriesId up = resolve(*db, "up", "api");
  const store::SeriesId down = resolve(*db, "down", "api");

  // 429 with Retry-After: 1, then 503 (backoff), then 200.
  receiver.respond_with(429, "slow down", "text/plain");
  receiver.response_header("Retry-After", "1");
  int answered = 0;
  receiver.on_request([&](const testing::ReceivedRequest&) {
    if (++answered == 1) {
      receiver.response_header("Retry-After", "");
      receiver.respond_with(503, "busy", "text/plain");
    } else {
      receiver.respond_with(200);
    }
  });
  v1_only.on_request([&](const testing::ReceivedRequest& r) {
    // Answered with what was set before this request: 415 to 2.0, then 200.
    if (r.headers.at("content-type").find("v2") == std::string::npos) return;
    v1_only.respond_with(200);
  });
  v1_only.respond_with(415, "unsupported", "text/plain");
  f.start();
  const std::vector<store::Sample> batch = {{up, 1000, 1}, {down, 1000, 0}, {up, 2000, 1}};
  REQUIRE(f.record(batch).is_ok());
  REQUIRE(receiver.wait_for(3, std::chrono::seconds(10)));
  REQUIRE(eventually([&] { return f.pending_samples("sink") == 0; }));
  auto got = receiver.requests();
  CHECK(got[1].at - got[0].at >= std::chrono::milliseconds(950));  // Retry-After: 1
  CHECK(got[0].body == got[1].body);
  CHECK(got[1].body == got[2].body);
  CHECK(got[0].headers.at("content-encoding") == "snappy");
  CHECK(got[0].headers.at("x-prometheus-remote-write-version") == "0.1.0");
  CHECK(decode(got[2].body, ingest::RemoteWriteVersion::kV1).size() == 3);
  CHECK(metric(m, "kpid_remote_write_samples_sent_total{destination=\"sink\"}") == 3);
  CHECK(metric(m, "kpid_remote_write_retries_total{destination=\"sink\"}") == 2);
  CHECK(metric(m, "kpid_remote_write_requests_total{code=\"429\",destination=\"sink\"}") == 1);
  CHECK(metric(m, "kpid_remote_write_pending_samples{destination=\"sink\"}") == 0);

  // 2.0 answered 415: the same batch again as 1.0, and 1.0 from then on.
  REQUIRE(eventually([&] { return f.pending_samples("v2") == 0; }));
  auto v = v1_only.requests();
  REQUIRE(v.size() == 2);
  CHECK(v[0].headers.at("x-prometheus-remote-write-version") == "2.0.0");
  CHECK(v[1].headers.at("content-type") == "application/x-protobuf");
  CHECK(decode(v[1].body, ingest::RemoteWriteVersion::kV1).size() == 3);
  CHECK(metric(m, "kpid_remote_write_protocol_fallbacks_total{destination=\"v2\"}") == 1);

  // 400: dropped, counted as failed, never retried.
  receiver.on_request(nullptr);
  receiver.respond_with(400, "out of order sample", "text/plain");
  receiver.clear();
  REQUIRE(f.record(std::vector<store::Sample>{{up, 3000, 1}, {down, 3000, 1}}).is_ok());
  REQUIRE(eventually([&] { return f.pending_samples("sink") == 0; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  CHECK(receiver.requests().size() == 1);
  CHECK(metric(m, "kpid_remote_write_samples_failed_total{destination=\"sink\"}") == 2);
  f.stop();
}

TEST_CASE("forward: a queue write that fails refuses the write, and a stop keeps what is unsent") {
  testing::TempDir dir;
  SystemClock clock;
  auto db = testing::open_test_store(dir.path(), clock);
  testing::FailingStateStore state(*db);
  metrics::Metrics m;
  testing::RecordingReceiver receiver;
  receiver.respond_with(500, "down", "text/plain");
  auto rw = destination("sink", receiver.url());
  rw.drop = {"{job=\"noise\"}"};
  {
    auto forwarder = Forwarder::create({rw}, state, *db, m, clock);
    REQUIRE(forwarder.is_ok());
    Forwarder& f = **forwarder;
    REQUIRE(f.load().is_ok());
    f.start();
    const store::SeriesId up = resolve(*db, "up", "api");
    const store::SeriesId noise = resolve(*db, "up", "noise");
    state.fail_writes = true;
    auto refused = f.record(std::vector<store::Sample>{{up, 1000, 1}});
    CHECK(refused.code() == StatusCode::kUnavailable);
    CHECK(f.pending_samples("sink") == 0);
    state.fail_writes = false;
    REQUIRE(f.record(std::vector<store::Sample>{{up, 1000, 1}, {noise, 1000, 1}}).is_ok());
    CHECK(f.pending_samples("sink") == 1);                   // the dropped series is not queued
    REQUIRE(receiver.wait_for(2, std::chrono::seconds(5)));  // retrying the 500
    f.stop();
  }
  // The next start finds the unsent sample and sends it once the receiver takes it.
  receiver.respond_with(200);
  receiver.clear();
  auto forwarder = Forwarder::create({rw}, *db, *db, m, clock);
  REQUIRE(forwarder.is_ok());
  REQUIRE((*forwarder)->load().is_ok());
  CHECK((*forwarder)->pending_samples("sink") == 1);
  (*forwarder)->start();
  REQUIRE(receiver.wait_for(1, std::chrono::seconds(5)));
  REQUIRE(eventually([&] { return (*forwarder)->pending_samples("sink") == 0; }));
  CHECK(decode(receiver.requests()[0].body, ingest::RemoteWriteVersion::kV1) ==
        std::vector<std::string>{"__name__=up,job=api, 1000 1.000000"});

  // A selector that does not parse names the destination's source.
  auto bad = destination("bad", receiver.url());
  bad.source = "kpid.toml:3";
  bad.match = {"{job=~\"(\"}"};
  auto refused = Forwarder::create({bad}, *db, *db, m, clock);
  REQUIRE_FALSE(refused.is_ok());
  CHECK(refused.status().message().find("kpid.toml:3: remote_write.bad.match") == 0);
  // The same check --check-config runs, without a store.
  CHECK(check(bad).message().starts_with("match: "));
  bad.match.clear();
  bad.url = "ftp://x";
  CHECK(check(bad).message().starts_with("url: "));
  CHECK(check(destination("ok", receiver.url())).is_ok());
}

TEST_CASE("forward: shards grow with lag and shrink when caught up, each series in order") {
  testing::TempDir dir;
  SystemClock clock;
  auto db = testing::open_test_store(dir.path(), clock);
  metrics::Metrics m;
  testing::RecordingReceiver receiver;
  // A slow receiver: the backlog outruns one shard.
  receiver.on_request([](const testing::ReceivedRequest&) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  });
  auto rw = destination("sink", receiver.url());
  rw.queue.max_samples_per_send = 10;
  rw.queue.max_shards = 4;
  auto rules = destination("rules", receiver.url());
  rules.send = {"rules"};
  auto forwarder = Forwarder::create({rw, rules}, *db, *db, m, clock);
  REQUIRE(forwarder.is_ok());
  Forwarder& f = **forwarder;
  REQUIRE(f.load().is_ok());
  CHECK(f.wants(Origin::kRules));
  CHECK_FALSE(f.wants(Origin::kKpis));
  std::vector<store::SeriesId> ids;
  for (int i = 0; i < 20; ++i) ids.push_back(resolve(*db, "load", std::to_string(i).c_str()));
  // Queued before the senders start: the first rounds already lag.
  for (int t = 0; t < 40; ++t) {
    std::vector<store::Sample> batch;
    for (auto id : ids) batch.push_back({id, 1000 + t, static_cast<double>(t)});
    REQUIRE(f.record(batch).is_ok());
  }
  CHECK(f.pending_samples("sink") == 800);
  CHECK(f.pending_samples("rules") == 0);                      // it sends rule results only
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // past batch_send_deadline
  int most = 1;
  f.start();
  REQUIRE(eventually([&] {
    most = std::max(most, f.shards("sink"));
    return f.pending_samples("sink") == 0;
  }));
  CHECK(most > 1);
  CHECK(eventually([&] { return f.shards("sink") == 1; }));
  // Each series' samples arrived in order, every one of them.
  std::map<std::string, std::vector<std::string>> per_series;
  for (const auto& r : receiver.requests()) {
    for (const auto& line : decode(r.body, ingest::RemoteWriteVersion::kV1)) {
      const size_t space = line.find(' ');
      per_series[line.substr(0, space)].push_back(line.substr(space + 1));
    }
  }
  REQUIRE(per_series.size() == 20);
  for (const auto& [series, samples] : per_series) {
    REQUIRE(samples.size() == 40);
    for (int t = 0; t < 40; ++t) {
      CHECK(samples[t].starts_with(std::to_string(1000 + t) + " "));
    }
  }
  // Recording-rule results go to the destinations that send "rules".
  receiver.clear();
  REQUIRE(f.enqueue(Origin::kRules, std::vector<store::Sample>{{ids[0], 5000, 1}}).is_ok());
  CHECK(f.pending_samples("sink") == 0);
  REQUIRE(receiver.wait_for(1, std::chrono::seconds(5)));
  CHECK(eventually([&] { return f.pending_samples("rules") == 0; }));
  f.stop();
}

TEST_CASE("forward: a stop does not wait for a receiver that does not answer") {
  testing::TempDir dir;
  SystemClock clock;
  auto db = testing::open_test_store(dir.path(), clock);
  metrics::Metrics m;
  testing::RecordingReceiver receiver;
  receiver.on_request([](const testing::ReceivedRequest&) {
    std::this_thread::sleep_for(std::chrono::seconds(2));
  });
  auto rw = destination("sink", receiver.url());
  rw.timeout = 30'000;
  auto forwarder = Forwarder::create({rw}, *db, *db, m, clock);
  REQUIRE(forwarder.is_ok());
  Forwarder& f = **forwarder;
  REQUIRE(f.load().is_ok());
  f.start();
  REQUIRE(f.record(std::vector<store::Sample>{{resolve(*db, "up", "api"), 1000, 1}}).is_ok());
  REQUIRE(receiver.wait_for(1, std::chrono::seconds(5)));
  const auto started = std::chrono::steady_clock::now();
  f.stop(Deadline::after(1'000));
  CHECK(std::chrono::steady_clock::now() - started < std::chrono::milliseconds(500));
  CHECK(f.pending_samples("sink") == 1);  // not acknowledged: kept for the next start
}
