// The dashboard kpid serves at /: its files over HTTP (types, caching, CSP, 404/405), and the page
// in a real headless Chromium driven over the DevTools protocol: it loads without console errors
// and with requests to kpid only, shows every KPI of the config, follows a status change without
// a reload, and its Acknowledge and Accept buttons, clicked like a user does, reach the API. A
// screenshot is kept as an artifact (build dir, artifacts/dashboard.png).

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <thread>

#include <catch2/catch.hpp>

#include "harness.h"
#include "support/cdp_client.h"

using namespace kpid_it;
namespace json = boost::json;
using kpid::testing::CdpClient;
using kpid::testing::CdpEvent;

namespace {

constexpr const char* kChromium = CHROMIUM_BINARY;
const Headers kJson{{"Content-Type", "application/json"}};

// ---------------------------------------------------------------------------------------------
// Config: four KPIs covering every direction and status the tiles show; `lat` breaches into a
// crit alert that opens an OKR draft at once.

struct KpiSpec {
  std::string id, name, owner, unit, direction, band, extra;
};

const std::vector<KpiSpec> kKpis = {
    {"lat", "Checkout p95 latency", "payments", "ms", "lower_is_better",
     "target = 200\nwarn = 500\ncrit = 800\n",
     "[kpi.baseline]\nmethod = \"quantile\"\nwindow = \"6h\"\nmin_history = \"1h\"\n"
     "[[kpi.alert]]\ncondition = \"crit\"\n"
     "runbook_url = \"https://runbooks.example.com/checkout-latency\"\n"
     "[kpi.okr]\nafter = \"0s\"\nrelated = [\"err\"]\n"},
    {"err", "Checkout error rate", "platform", "%", "lower_is_better", "warn = 1\ncrit = 5\n", ""},
    {"cpu", "Worker CPU", "infra", "%", "in_range",
     "crit_low = 5\nwarn_low = 15\nwarn_high = 75\ncrit_high = 90\n", ""},
    {"signup", "Signup conversion", "growth", "%", "higher_is_better",
     "target = 5\nwarn = 3\ncrit = 2\n", ""},
};

std::string config_toml() {
  std::string t = "[alerting]\nexternal_url = \"http://kpid.example:9470\"\n";
  for (const auto& k : kKpis) {
    t += "[[kpi]]\nid = \"" + k.id + "\"\nname = \"" + k.name + "\"\nowner = \"" + k.owner +
         "\"\nunit = \"" + k.unit + "\"\ndirection = \"" + k.direction +
         "\"\nstale_after = \"1h\"\n[kpi.value]\nselector = '" + k.id +
         "'\nover_time = \"last\"\nwindow = \"1h\"\n[kpi.band]\n" + k.band + k.extra;
  }
  return t;
}

// Six hours of minutely history for lat, err and cpu, so the charts have lines to draw (and lat
// a baseline once kpid restarts); signup stays without data.
std::string history_lines(int64_t now) {
  std::string out;
  char line[96];
  for (int i = 360; i >= 1; --i) {
    const int64_t t = now - i * 60'000LL;
    const double x = static_cast<double>(i);
    std::snprintf(line, sizeof line, "lat value=%.1f %lld\n",
                  270 + 60 * std::sin(x / 40) + 15 * std::sin(x * 1.7), static_cast<long long>(t));
    out += line;
    std::snprintf(line, sizeof line, "err value=%.3f %lld\n",
                  0.45 + 0.2 * std::sin(x / 25) + 0.05 * std::sin(x * 2.3),
                  static_cast<long long>(t));
    out += line;
    std::snprintf(line, sizeof line, "cpu value=%.1f %lld\n",
                  45 + 20 * std::sin(x / 60) + 3 * std::sin(x * 1.3), static_cast<long long>(t));
    out += line;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// A headless Chromium with one page attached over CDP. Members are destroyed in reverse: the
// connection closes, the browser is stopped and reaped (BackgroundProcess, by PID), then its
// profile directory is removed.

std::string js_string(std::string_view s) { return json::serialize(json::value(s)); }

class Browser {
 public:
  Browser()
      : process_(
            "chromium",
            // A private HOME and XDG dirs: Chromium's crash handler and caches write there
            // whatever the flags, and the test leaves nothing behind.
            {"/usr/bin/env", "HOME=" + profile_.path(),
             "XDG_CONFIG_HOME=" + profile_.file("config"),
             "XDG_CACHE_HOME=" + profile_.file("cache"), kChromium, "--headless=new",
             "--no-sandbox", "--disable-gpu", "--remote-debugging-port=0",
             "--user-data-dir=" + profile_.file("profile"), "--window-size=1440,1000",
             "--hide-scrollbars", "--mute-audio",
             // Keep every connection on loopback: no first-run, sync, update, metrics or
             // safe-browsing traffic, a dead proxy and a resolver that resolves nothing.
             "--no-first-run", "--no-default-browser-check", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--disable-default-apps",
             "--disable-domain-reliability", "--disable-extensions", "--metrics-recording-only",
             "--no-pings", "--password-store=basic", "--proxy-server=127.0.0.1:9",
             "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1", "about:blank"},
            profile_.file("chromium.log")) {
    // Chromium writes its port and browser endpoint here once it listens.
    const std::string active_port = profile_.file("profile/DevToolsActivePort");
    std::string text;
    const bool listening = eventually(
        [&] {
          text = read_file(active_port);
          return text.find('\n') != std::string::npos || !process_.running();
        },
        20s, 20ms);
    INFO("chromium log:\n" << tail(process_.log()));
    REQUIRE(listening);
    REQUIRE(process_.running());
    const size_t nl = text.find('\n');
    const uint16_t port = static_cast<uint16_t>(std::stoi(text.substr(0, nl)));
    std::string path = text.substr(nl + 1);
    path.erase(path.find_last_not_of("\r\n") + 1);
    cdp_ = std::make_unique<CdpClient>(port, path);

    // Attach to the page (flat sessions: its commands and events carry the session id).
    std::string target;
    const json::object targets = cdp_->call("Target.getTargets");
    for (const auto& t : targets.at("targetInfos").as_array()) {
      if (json_str(t, "type") == "page") target = json_str(t, "targetId");
    }
    if (target.empty()) {
      target = json_str(cdp_->call("Target.createTarget", {{"url", "about:blank"}}), "targetId");
    }
    session_ =
        json_str(cdp_->call("Target.attachToTarget", {{"targetId", target}, {"flatten", true}}),
                 "sessionId");
    REQUIRE_FALSE(session_.empty());
    for (const char* domain : {"Runtime.enable", "Log.enable", "Network.enable", "Page.enable"}) {
      call(domain);
    }
    call("Emulation.setDeviceMetricsOverride",
         {{"width", 1440}, {"height", 1000}, {"deviceScaleFactor", 1}, {"mobile", false}});
  }

  ~Browser() {
    // A graceful close lets Chromium stop its helper processes before the profile goes.
    if (cdp_ && cdp_->connected()) {
      try {
        cdp_->call("Browser.close", {}, {}, 5s);
      } catch (const std::exception&) {
        // already going away; BackgroundProcess still stops and reaps it
      }
    }
    cdp_.reset();
    process_.stop(10s);
  }

  json::object call(std::string_view method, json::object params = {}) {
    return cdp_->call(method, std::move(params), session_);
  }

  // Navigates and waits for the load event.
  void navigate(const std::string& url) {
    const size_t mark = cdp_->event_count();
    const json::object r = call("Page.navigate", {{"url", url}});
    INFO("Page.navigate: " << json::serialize(r));
    REQUIRE(json_str(r, "errorText").empty());
    REQUIRE(cdp_->wait_for_event(
        [&](const CdpEvent& e) { return e.method == "Page.loadEventFired"; }, 15s, mark));
  }

  // The value of a JavaScript expression in the page (awaited if it is a promise).
  json::value eval(const std::string& expression) {
    const json::object r =
        call("Runtime.evaluate",
             {{"expression", expression}, {"returnByValue", true}, {"awaitPromise", true}});
    INFO("Runtime.evaluate " << expression << "\n-> " << json::serialize(r));
    REQUIRE_FALSE(r.contains("exceptionDetails"));
    const json::value* value = r.at("result").as_object().if_contains("value");
    return value != nullptr ? *value : json::value(nullptr);
  }

  // Polls a boolean expression until it is true; returns whether it became true.
  bool wait_until(const std::string& expression, std::chrono::milliseconds timeout = 10s) {
    return eventually(
        [&] {
          const json::value v = eval(expression);
          return v.is_bool() && v.as_bool();
        },
        timeout, 100ms);
  }

  // A real click: the element is scrolled into view and the mouse pressed and released at its
  // center, through Chromium's input pipeline (hit testing, focus, click event).
  void click(const std::string& selector) {
    const auto [x, y] = move_mouse(selector);
    for (const char* type : {"mousePressed", "mouseReleased"}) {
      call("Input.dispatchMouseEvent", {{"type", type},
                                        {"x", x},
                                        {"y", y},
                                        {"button", "left"},
                                        {"buttons", 1},
                                        {"clickCount", 1}});
    }
  }

  // Scrolls the element into view and moves the mouse to its center; returns that point.
  std::pair<double, double> move_mouse(const std::string& selector) {
    const json::value box =
        eval("(() => { const el = document.querySelector(" + js_string(selector) +
             ");"
             " if (!el) return null; el.scrollIntoView({block: 'center'});"
             " const r = el.getBoundingClientRect();"
             " return {x: r.left + r.width / 2, y: r.top + r.height / 2, w: r.width, h: r.height};"
             " })()");
    INFO("click " << selector << ": " << json::serialize(box));
    REQUIRE(box.is_object());
    REQUIRE(box.at("w").to_number<double>() > 0);
    const double x = box.at("x").to_number<double>();
    const double y = box.at("y").to_number<double>();
    call("Input.dispatchMouseEvent", {{"type", "mouseMoved"}, {"x", x}, {"y", y}});
    return {x, y};
  }

  // Types `text` into the focused element as one input (replacing its selection).
  void type(const std::string& text) { call("Input.insertText", {{"text", text}}); }

  // A PNG of the whole page (not just the viewport).
  std::string screenshot() {
    const json::object metrics = call("Page.getLayoutMetrics");
    const json::object& size = metrics.at("cssContentSize").as_object();
    const json::object shot =
        call("Page.captureScreenshot", {{"format", "png"},
                                        {"captureBeyondViewport", true},
                                        {"clip",
                                         {{"x", 0},
                                          {"y", 0},
                                          {"width", size.at("width").to_number<double>()},
                                          {"height", size.at("height").to_number<double>()},
                                          {"scale", 1}}}});
    return base64_decode(json_str(shot, "data"));
  }

  std::vector<CdpEvent> events() const { return cdp_->events(); }

 private:
  static std::string base64_decode(std::string_view in) {
    auto value = [](char c) -> int {
      if (c >= 'A' && c <= 'Z') return c - 'A';
      if (c >= 'a' && c <= 'z') return c - 'a' + 26;
      if (c >= '0' && c <= '9') return c - '0' + 52;
      if (c == '+') return 62;
      if (c == '/') return 63;
      return -1;
    };
    std::string out;
    uint32_t acc = 0;
    int bits = 0;
    for (char c : in) {
      const int v = value(c);
      if (v < 0) continue;  // '=' padding
      acc = (acc << 6) | static_cast<uint32_t>(v);
      bits += 6;
      if (bits >= 8) {
        bits -= 8;
        out.push_back(static_cast<char>((acc >> bits) & 0xFF));
      }
    }
    return out;
  }

  TempDir profile_;
  BackgroundProcess process_;
  std::unique_ptr<CdpClient> cdp_;
  std::string session_;
};

// What the page shows of each KPI tile.
struct Tile {
  std::string name, status, status_text, owner, value, band;
};

std::map<std::string, Tile> tiles(Browser& b) {
  const json::value v = b.eval(
      "[...document.querySelectorAll('#tiles .tile')].map(t => ({id: t.dataset.kpi,"
      " name: t.querySelector('.tile-name').textContent,"
      " status: t.dataset.status,"
      " status_text: t.querySelector('.tile-status').textContent,"
      " owner: t.querySelector('.tile-owner').textContent,"
      " value: t.querySelector('.tile-value').textContent,"
      " band: t.querySelector('.tile-band').textContent}))");
  std::map<std::string, Tile> out;
  for (const auto& t : v.as_array()) {
    out[json_str(t, "id")] = {json_str(t, "name"),        json_str(t, "status"),
                              json_str(t, "status_text"), json_str(t, "owner"),
                              json_str(t, "value"),       json_str(t, "band")};
  }
  return out;
}

// Console errors, uncaught exceptions and error log entries, one line each.
std::vector<std::string> page_errors(const std::vector<CdpEvent>& events) {
  std::vector<std::string> out;
  for (const auto& e : events) {
    if (e.method == "Runtime.consoleAPICalled") {
      const std::string type = json_str(e.params, "type");
      if (type == "error" || type == "assert")
        out.push_back("console." + type + ": " + json::serialize(e.params));
    } else if (e.method == "Runtime.exceptionThrown") {
      out.push_back("exception: " + json::serialize(e.params));
    } else if (e.method == "Log.entryAdded") {
      const json::value& entry = e.params.at("entry");
      if (json_str(entry, "level") == "error") out.push_back("log: " + json::serialize(entry));
    }
  }
  return out;
}

// URLs of requests the page made anywhere but `origin`.
std::vector<std::string> foreign_requests(const std::vector<CdpEvent>& events,
                                          const std::string& origin) {
  std::vector<std::string> out;
  for (const auto& e : events) {
    if (e.method != "Network.requestWillBeSent") continue;
    const std::string url = json_str(e.params.at("request"), "url");
    if (url.rfind(origin + "/", 0) != 0) out.push_back(url);
  }
  return out;
}

size_t count_requests(const std::vector<CdpEvent>& events, std::string_view path_prefix) {
  return static_cast<size_t>(std::count_if(events.begin(), events.end(), [&](const CdpEvent& e) {
    if (e.method != "Network.requestWillBeSent") return false;
    const std::string url = json_str(e.params.at("request"), "url");
    const size_t path = url.find('/', url.find("//") + 2);
    return path != std::string::npos && url.compare(path, path_prefix.size(), path_prefix) == 0;
  }));
}

json::object only(const json::array& list, const std::string& what) {
  INFO(what << ": " << json::serialize(list));
  REQUIRE(list.size() == 1);
  return list[0].as_object();
}

}  // namespace

TEST_CASE("dashboard: kpid serves the page and its files with types, caching, CSP, 404 and 405",
          "[dashboard]") {
  Kpid k;
  k.start();

  const HttpResponse page = k.get("/");
  REQUIRE(page.status == 200);
  CHECK(page.header("content-type") == "text/html; charset=utf-8");
  const std::string csp = page.header("content-security-policy");
  INFO("CSP: " << csp);
  CHECK(contains(csp, "default-src 'self'"));
  CHECK_FALSE(contains(csp, "unsafe-inline"));
  CHECK_FALSE(contains(csp, "unsafe-eval"));
  CHECK(page.header("x-content-type-options") == "nosniff");
  CHECK(page.header("cache-control") == "no-cache");
  CHECK(contains(page.body, "<link rel=\"icon\" href=\"data:,\">"));
  CHECK(contains(page.body, "src=\"/ui/dashboard.js\""));
  CHECK(contains(page.body, "href=\"/ui/dashboard.css\""));
  CHECK_FALSE(contains(page.body, "<script>"));  // no inline script: the CSP would refuse it

  const std::string etag = page.header("etag");
  REQUIRE(etag.size() > 2);
  CHECK(etag.front() == '"');
  const HttpResponse again = k.get("/", {{"If-None-Match", etag}});
  CHECK(again.status == 304);
  CHECK(again.body.empty());
  CHECK(again.header("etag") == etag);
  CHECK(k.get("/", {{"If-None-Match", "\"other\""}}).status == 200);

  const HttpResponse js = k.get("/ui/dashboard.js");
  REQUIRE(js.status == 200);
  CHECK(js.header("content-type") == "text/javascript; charset=utf-8");
  CHECK(contains(js.body, "/api/v1/kpis"));
  CHECK(js.header("etag") != etag);
  const HttpResponse css = k.get("/ui/dashboard.css");
  REQUIRE(css.status == 200);
  CHECK(css.header("content-type") == "text/css; charset=utf-8");
  // Nothing from elsewhere: no imports, fonts or images by URL.
  CHECK_FALSE(contains(css.body, "@import"));
  CHECK_FALSE(contains(css.body, "url("));

  const HttpResponse head = http_request(k.http_port(), "HEAD", "/");
  CHECK(head.status == 200);
  CHECK(head.header("content-type") == "text/html; charset=utf-8");
  CHECK(head.header("content-length") == std::to_string(page.body.size()));
  CHECK(head.body.empty());

  CHECK(k.get("/ui/missing.js").status == 404);
  CHECK(k.get("/ui/").status == 404);
  CHECK(k.get("/ui/../kpid.toml").status == 404);
  const HttpResponse post = k.post("/", "x");
  CHECK(post.status == 405);
  CHECK(post.header("allow") == "GET, HEAD");
  CHECK(k.post("/ui/dashboard.js", "x").status == 405);

  const std::string metrics = k.metrics();
  CHECK(metric_value(metrics, "kpid_http_requests_total", {{"handler", "/"}, {"code", "200"}})
            .value_or(0) >= 1);
  CHECK(
      metric_value(metrics, "kpid_http_requests_total", {{"handler", "/ui/:file"}, {"code", "200"}})
          .value_or(0) >= 2);
}

TEST_CASE(
    "dashboard: in headless Chromium the page shows the KPIs, updates live, and its buttons "
    "acknowledge an alert and accept an OKR draft",
    "[dashboard]") {
  const auto started = Clock::now();
  Kpid k({.config_toml = config_toml()});
  k.start();

  // History for the charts; a restart computes lat's baseline from it.
  k.write_ok(history_lines(now_ms()), "ms");
  k.stop();
  k.start();
  write_value_now(k, "err", 0.4);
  write_value_now(k, "cpu", 81);   // above warn_high
  write_value_now(k, "lat", 870);  // crit: the alert fires and opens an OKR draft at once
  const bool breached = eventually(
      [&] {
        return get_alerts(k, "state=firing").size() == 1 &&
               require_api_data(k.get("/api/v1/okrs?state=draft")).as_array().size() == 1;
      },
      10s, 50ms);
  REQUIRE(breached);
  const json::object alert = only(get_alerts(k, "state=firing"), "firing alerts");
  const std::string alert_id = json_str(alert, "id");
  const json::object draft =
      only(require_api_data(k.get("/api/v1/okrs?state=draft")).as_array(), "OKR drafts");
  const std::string okr_id = json_str(draft, "id");

  Browser browser;
  const std::string origin = "http://127.0.0.1:" + std::to_string(k.http_port());
  // Poll every second, so the live update shows quickly.
  browser.navigate(origin + "/?refresh=1");

  // (2) Every KPI of the config, with the status the API reports, its name and owner.
  const bool rendered = browser.wait_until(
      "document.querySelectorAll('#tiles .tile').length === " + std::to_string(kKpis.size()) +
      " && document.querySelector('#alerts button[data-action=ack]') !== null"
      " && document.querySelector('#okrs button[data-action=accept]') !== null"
      " && document.querySelectorAll('#charts .chart-card svg.chart').length === " +
      std::to_string(kKpis.size()));
  REQUIRE(rendered);
  {
    const auto shown = tiles(browser);
    const json::value api = require_api_data(k.get("/api/v1/kpis"));
    std::map<std::string, std::string> status;
    for (const auto& v : api.as_array()) status[json_str(v, "id")] = json_str(v, "status");
    CHECK(status == std::map<std::string, std::string>{
                        {"lat", "crit"}, {"err", "ok"}, {"cpu", "warn"}, {"signup", "no_data"}});
    for (const auto& spec : kKpis) {
      INFO("KPI " << spec.id);
      REQUIRE(shown.contains(spec.id));
      const Tile& t = shown.at(spec.id);
      CHECK(t.name == spec.name);
      CHECK(t.owner == spec.owner);
      CHECK(t.status == status[spec.id]);
      std::string label = status[spec.id];
      std::replace(label.begin(), label.end(), '_', ' ');
      CHECK(t.status_text == label);
    }
    CHECK(shown.at("lat").value == "870ms");  // number and unit, in two elements
    CHECK(shown.at("signup").value == "–");
    // Each band level as the values that breach it: in_range on both sides, never "5–90",
    // which would read as the healthy range.
    CHECK(shown.at("lat").band == "target 200 · warn >500 · crit >800 ms");
    CHECK(shown.at("err").band == "warn >1 · crit >5%");
    CHECK(shown.at("cpu").band == "warn <15 or >75 · crit <5 or >90%");
    CHECK(shown.at("signup").band == "target 5 · warn <3 · crit <2%");
  }
  // The charts: a value line where there is data, thresholds, lat's breach shaded.
  CHECK(browser
            .eval("[...document.querySelectorAll('#charts .chart-card')].every(c =>"
                  " c.querySelectorAll('path.threshold').length >= 2)")
            .as_bool());
  CHECK(browser
            .eval("['lat', 'err', 'cpu'].every(id => document.getElementById('chart-' + id)"
                  ".querySelector('path.value-line').getAttribute('d').length > 100)")
            .as_bool());
  CHECK(
      browser.wait_until("document.querySelector('#chart-lat rect.breach-crit') !== null"
                         " && document.querySelector('#chart-cpu rect.breach-warn') !== null",
                         5s));

  // Without [[slo]] tables the SLO section stays hidden.
  CHECK(browser.eval("document.getElementById('slos-section').hidden").as_bool());

  // (5) Live: a status change after the load appears without a reload.
  browser.eval("window.kpidTestMark = 'same page'");
  write_value_now(k, "err", 2.5);  // warn
  CHECK(browser.wait_until(
      "document.querySelector('#tiles .tile[data-kpi=err]').dataset.status === 'warn'"
      " && document.querySelector('#tiles .tile[data-kpi=err] .tile-status').textContent"
      " === 'warn'",
      8s));
  CHECK(browser.eval("window.kpidTestMark").as_string() == "same page");

  // (3) Acknowledge, as a named user: type the name once, click the alert's button.
  browser.click("#author");
  browser.eval("document.getElementById('author').select()");
  browser.type("oncall-alice");
  browser.click("#alerts button[data-action=ack][data-alert=\"" + alert_id + "\"]");
  json::object acked;
  const bool ack_reached = eventually(
      [&] {
        acked = get_alert_detail(k, alert_id);
        return acked.at("acknowledged").is_object();
      },
      5s, 50ms);
  INFO("alert: " << json::serialize(acked));
  REQUIRE(ack_reached);
  CHECK(json_str(acked.at("acknowledged"), "author") == "oncall-alice");
  CHECK_FALSE(json_str(acked.at("acknowledged"), "comment").empty());
  CHECK(browser.wait_until(
      "(() => { const li = document.querySelector('#alerts li[data-alert=\"" + alert_id +
          "\"]'); return li.dataset.acknowledged === 'true'"
          " && li.querySelector('button[data-action=ack]').disabled"
          " && li.querySelector('.action-note').textContent.includes('oncall-alice'); })()",
      5s));

  // (4) Accept the OKR draft the breach opened.
  browser.click("#okrs button[data-action=accept][data-okr=\"" + okr_id + "\"]");
  json::object accepted;
  const bool accept_reached = eventually(
      [&] {
        accepted = require_api_data(k.get("/api/v1/okrs/" + okr_id)).as_object();
        return json_str(accepted, "state") == "active";
      },
      5s, 50ms);
  INFO("OKR: " << json::serialize(accepted));
  REQUIRE(accept_reached);
  bool by_alice = false;
  for (const auto& h : accepted.at("history").as_array()) {
    by_alice = by_alice || json_str(h, "author") == "oncall-alice";
  }
  CHECK(by_alice);
  CHECK(browser.wait_until("document.querySelector('#okrs .okr[data-okr=\"" + okr_id +
                               "\"]').dataset.state === 'active'",
                           5s));

  // Another range redraws every chart over it, and back.
  for (const char* range : {"24h", "6h"}) {
    browser.click(std::string("#range button[data-range=\"") + range + "\"]");
    CHECK(browser.wait_until(
        std::string("[...document.querySelectorAll('#charts svg.chart')].every(s =>"
                    " s.getAttribute('aria-label').endsWith('last ") +
            range + "'))",
        5s));
  }

  // Pointing at a chart shows the value under the mouse (moved again each try: a chart
  // redrawn meanwhile starts without the crosshair).
  CHECK(eventually(
      [&] {
        browser.move_mouse("#chart-lat rect.catcher");
        const json::value shown = browser.eval(
            "(() => { const g = document.querySelector('#chart-lat g.hover');"
            " return g.getAttribute('visibility') === 'visible'"
            " && /\\d\\sms$/.test(g.querySelector('text').textContent); })()");
        return shown.is_bool() && shown.as_bool();
      },
      3s, 100ms));

  // The screenshot, kept for people to look at (from the top: the header is sticky).
  browser.eval("window.scrollTo(0, 0)");
  const std::string png = browser.screenshot();
  const std::filesystem::path dir = std::filesystem::path(KPID_BUILD_DIR) / "artifacts";
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "dashboard.png").string();
  write_file(path, png);
  std::cout << "dashboard screenshot: " << path << " (" << png.size() << " bytes)\n";
  REQUIRE(png.size() > 20'000);
  CHECK(png.compare(0, 8, "\x89PNG\r\n\x1a\n") == 0);

  // (1) No console errors or uncaught exceptions over the whole visit, and no request anywhere
  // but kpid (the page's CSP allows nothing else, and the browser's own traffic is off).
  const std::vector<CdpEvent> events = browser.events();
  const std::vector<std::string> errors = page_errors(events);
  INFO("page errors:\n"
       << [&] {
            std::string s;
            for (const auto& e : errors) s += "  " + e + "\n";
            return s;
          }());
  CHECK(errors.empty());
  const std::vector<std::string> foreign = foreign_requests(events, origin);
  INFO("requests elsewhere: " << foreign.size()
                              << (foreign.empty() ? "" : ", first " + foreign[0]));
  CHECK(foreign.empty());
  CHECK(count_requests(events, "/ui/dashboard.js") == 1);
  CHECK(count_requests(events, "/ui/dashboard.css") == 1);
  CHECK(count_requests(events, "/api/v1/alerts/" + alert_id + "/ack") == 1);
  CHECK(count_requests(events, "/api/v1/okrs/" + okr_id + "/accept") == 1);
  CHECK(count_requests(events, "/favicon.ico") == 0);

  const auto elapsed = std::chrono::duration<double>(Clock::now() - started).count();
  std::cout << "dashboard browser test took " << elapsed << " s\n";
  CHECK(elapsed < 30);
}

TEST_CASE("dashboard: with tokens required the page asks for one, then shows the KPIs and acts",
          "[dashboard]") {
  const std::string token = "d-0123456789abcdef0123456789abcdef";
  auto hashed = run_command({KPID_BINARY, "--hash-token"}, token + "\n");
  REQUIRE(hashed.exit_code == 0);
  hashed.out.pop_back();
  Kpid k({.config_toml = config_toml() +
                         "[[auth.token]]\nname = \"oncall\"\nroles = "
                         "[\"write\", \"admin\"]\nsha256 = \"" +
                         hashed.out + "\"\n"});
  k.start();
  const Headers bearer{{"Authorization", "Bearer " + token}};
  REQUIRE(k.post("/write?precision=ms", "lat value=870 " + std::to_string(unique_now_ms()), bearer)
              .status == 204);

  Browser browser;
  const std::string origin = "http://127.0.0.1:" + std::to_string(k.http_port());
  browser.navigate(origin + "/?refresh=1");
  // Without a token the API answers 401: the page shows the token field and says why.
  REQUIRE(
      browser.wait_until("!document.getElementById('token-box').hidden && "
                         "document.querySelector('#connection .text').textContent"
                         ".includes('needs a token')"));
  CHECK(browser.eval("document.querySelectorAll('#tiles .tile').length").to_number<int>() == 0);

  // Typed in (real key input into the focused field), then committed.
  browser.click("#token");
  browser.call("Input.insertText", {{"text", token}});
  browser.eval("document.getElementById('token').dispatchEvent(new Event('change')), true");
  REQUIRE(browser.wait_until(
      "document.querySelectorAll('#tiles .tile').length === " + std::to_string(kKpis.size()) +
      " && document.querySelector('#alerts button[data-action=ack]') "
      "!== null"));
  browser.click("#alerts button[data-action=ack]");
  CHECK(eventually([&] {
    auto r = k.get("/api/v1/alerts?state=firing", bearer);
    auto data = require_api_data(r);
    return data.as_array().size() == 1 &&
           data.as_array()[0].as_object().at("acknowledged").is_object();
  }));
  // The token went only in headers to kpid, and only the 401s before it was given were errors.
  const std::vector<CdpEvent> events = browser.events();
  for (const auto& e : page_errors(events)) {
    INFO(e);
    CHECK(contains(e, "401"));
  }
  CHECK(foreign_requests(events, origin).empty());
  CHECK(browser.eval("window.sessionStorage.getItem('kpid.token')").as_string() == token);
  CHECK(browser.eval("window.localStorage.getItem('kpid.token')").is_null());
}

// ---------------------------------------------------------------------------------------------
// SLOs: a card per SLO with its figures as the API reports them, the budget burn-down over the
// window (ideal burn and zero line) and the burn-rate chart with a line per alert at its factor.

namespace {

// `checkout` counts requests and errors: 0.1% errors for five hours, then 50% for the last
// hour (a 50x burn of a 99% objective), so both its alerts fire and its budget is gone.
// `signup_slices` is a time-slice SLO on a KPI without data.
std::string slo_config_toml() {
  return config_toml() + R"(
[[slo]]
id = "checkout"
name = "Checkout availability"
owner = "payments"
objective = 99
window = "28d"
interval = "1s"
[slo.events]
bad = 'checkout_errors'
total = 'checkout_requests'
[[slo.alert]]
name = "checkout_page"
severity = "critical"
long_window = "1h"
short_window = "5m"
factor = 14.4
[[slo.alert]]
name = "checkout_ticket"
severity = "warning"
long_window = "6h"
short_window = "30m"
factor = 6

[[slo]]
id = "signup_slices"
name = "Signup conversion on target"
owner = "growth"
objective = 95
window = "month"
[slo.time_slices]
kpi = "signup"
good = ["ok"]
)";
}

struct Counters {
  double requests = 0;
  double errors = 0;
};

// Minutely counter samples over six hours up to `now`; returns the counters at `now`.
Counters slo_history(const Kpid& k, int64_t now) {
  Counters c;
  std::string out;
  char line[96];
  for (int i = 360; i >= 1; --i) {
    const int64_t t = now - i * 60'000LL;
    c.requests += 1000;
    c.errors += i <= 60 ? 500 : 1;
    std::snprintf(line, sizeof line, "checkout_requests value=%.0f %lld\n", c.requests,
                  static_cast<long long>(t));
    out += line;
    std::snprintf(line, sizeof line, "checkout_errors value=%.0f %lld\n", c.errors,
                  static_cast<long long>(t));
    out += line;
  }
  k.write_ok(out, "ms");
  return c;
}

// Both counters at the current time, still at 50% errors; whether kpid took them (no Catch
// assertions: this runs on a writer thread).
bool slo_write_now(const Kpid& k, Counters& c) {
  c.requests += 20;
  c.errors += 10;
  const std::string t = std::to_string(unique_now_ms());
  char body[160];
  std::snprintf(body, sizeof body,
                "checkout_requests value=%.0f %s\ncheckout_errors value=%.0f %s\n", c.requests,
                t.c_str(), c.errors, t.c_str());
  return k.write(body, "ms").status == 204;
}

double shown_number(std::string text) {
  // "−12.3%", "50.1×": the minus sign as the page writes it (U+2212), unit dropped.
  const std::string minus = "\xE2\x88\x92";
  if (text.rfind(minus, 0) == 0) text = "-" + text.substr(minus.size());
  return std::strtod(text.c_str(), nullptr);
}

}  // namespace

TEST_CASE(
    "dashboard: in headless Chromium the SLO cards show each SLO's figures, its budget "
    "burn-down and its burn rates against the alert thresholds, and link to its firing alerts",
    "[dashboard][slo]") {
  Kpid k({.config_toml = slo_config_toml()});
  k.start();
  Counters counters = slo_history(k, now_ms());
  // The tracker fills its buckets from the store when it starts.
  k.stop();
  k.start();
  write_value_now(k, "lat", 870);  // a KPI alert too, which the SLO filter hides

  // Counters keep moving while the page is open, so the short windows stay fed.
  std::atomic<bool> writing{true};
  std::atomic<int> write_failures{0};
  std::thread writer([&] {
    while (writing) {
      if (!slo_write_now(k, counters)) ++write_failures;
      std::this_thread::sleep_for(250ms);
    }
  });
  struct Join {
    std::atomic<bool>& flag;
    std::thread& t;
    ~Join() {
      flag = false;
      if (t.joinable()) t.join();
    }
  } join{writing, writer};

  auto slo_alerts = [&] {
    size_t n = 0;
    for (const auto& a : get_alerts(k, "state=firing")) {
      if (json_str(a, "slo") == "checkout") ++n;
    }
    return n;
  };
  const bool fired = eventually([&] { return slo_alerts() == 2; }, 20s, 100ms);
  INFO("alerts: " << json::serialize(get_alerts(k, "")));
  REQUIRE(fired);

  Browser browser;
  const std::string origin = "http://127.0.0.1:" + std::to_string(k.http_port());
  browser.navigate(origin + "/?refresh=1");
  REQUIRE(browser.wait_until(
      "!document.getElementById('slos-section').hidden"
      " && document.querySelectorAll('#slos .slo-card').length === 2"
      " && document.querySelectorAll('#slo-checkout svg.chart').length === 2"
      " && document.querySelectorAll('#slo-signup_slices svg.chart').length === 2"
      " && document.querySelector('#slo-checkout .slo-alerts').textContent === '2 firing alerts'",
      15s));

  // The cards in config order, each with what GET /api/v1/slos says.
  const json::array api = require_api_data(k.get("/api/v1/slos")).as_array();
  REQUIRE(api.size() == 2);
  const json::object& checkout = api[0].as_object();
  INFO("checkout: " << json::serialize(checkout));
  const json::value cards = browser.eval(
      "[...document.querySelectorAll('#slos .slo-card')].map(c => ({id: c.dataset.slo,"
      " status: c.dataset.status,"
      " badge: c.querySelector('.slo-status').textContent,"
      " name: c.querySelector('.slo-name').textContent,"
      " meta: c.querySelector('.slo-meta').textContent,"
      " sli: c.querySelector('.slo-sli .num').textContent,"
      " budget: c.querySelector('.slo-budget .num').textContent,"
      " budget_out: c.querySelector('.slo-budget').dataset.out || '',"
      " burn_1h: c.querySelector('.slo-burn-1h .num').textContent,"
      " burn_6h: c.querySelector('.slo-burn-6h .num').textContent}))");
  INFO("cards: " << json::serialize(cards));
  REQUIRE(cards.as_array().size() == 2);
  const json::value& c0 = cards.as_array()[0];
  const json::value& c1 = cards.as_array()[1];
  CHECK(json_str(c0, "id") == "checkout");
  CHECK(json_str(c1, "id") == "signup_slices");
  CHECK(json_str(c0, "name") == "Checkout availability");
  CHECK(json_str(c0, "status") == json_str(checkout, "status"));
  std::string badge = json_str(checkout, "status");
  std::replace(badge.begin(), badge.end(), '_', ' ');
  CHECK(json_str(c0, "badge") == badge);
  CHECK(contains(json_str(c0, "meta"), "objective 99% over 28d rolling"));
  CHECK(contains(json_str(c0, "meta"), "payments"));
  CHECK(contains(json_str(c1, "meta"), "objective 95% over this month"));
  // Figures as the API has them (the counters move meanwhile: a small tolerance).
  const double sli = checkout.at("sli").to_number<double>();
  CHECK(std::abs(shown_number(json_str(c0, "sli")) - sli) < 0.5);
  CHECK(json_str(c0, "sli").back() == '%');
  const double remaining = checkout.at("budget").at("remaining").to_number<double>();
  CHECK(remaining < 0);  // 50% errors for an hour spend 28 days' budget of 1%
  CHECK(std::abs(shown_number(json_str(c0, "budget")) - remaining * 100) <
        std::max(5.0, std::abs(remaining * 100) * 0.05));
  CHECK(json_str(c0, "budget_out") == "true");  // shown red
  // A spent budget has no time to exhaustion left to tell.
  CHECK(browser.eval("document.querySelector('#slo-checkout .slo-exhaustion').textContent")
            .as_string()
            .empty());
  const double burn_1h = checkout.at("burn_rates").at("1h").to_number<double>();
  CHECK(burn_1h > 14.4);
  CHECK(std::abs(shown_number(json_str(c0, "burn_1h")) - burn_1h) < burn_1h * 0.1);
  CHECK(json_str(c0, "burn_1h").ends_with("\xC3\x97"));  // ×
  CHECK(shown_number(json_str(c0, "burn_6h")) > 6);
  // The time-slice SLO over a KPI without data has no figures yet.
  CHECK(json_str(c1, "budget_out").empty());
  CHECK(json_str(c1, "burn_1h") == "\xE2\x80\x93");  // –

  // The burn-down: a budget line ending below the zero line, the ideal burn from 100% at the
  // window's start down to 0% at its end.
  const json::value burndown = browser.eval(
      "(() => { const svg = document.querySelector('#slo-checkout .slo-budget-plot svg');"
      " const zero = svg.querySelector('line.zero-line');"
      " const ideal = svg.querySelector('line.ideal-line');"
      " const d = svg.querySelector('path.budget-line').getAttribute('d');"
      " const pts = d.split(/[ML]/).filter(Boolean).map(p => p.split(',').map(Number));"
      " return {zero_y: +zero.getAttribute('y1'), ideal_y1: +ideal.getAttribute('y1'),"
      "  ideal_y2: +ideal.getAttribute('y2'), first_y: pts[0][1], last_y: pts[pts.length - 1][1],"
      "  points: pts.length, label: svg.getAttribute('aria-label'),"
      "  top: [...svg.querySelectorAll('.grid text')].map(t => t.textContent)}; })()");
  INFO("burn-down: " << json::serialize(burndown));
  const auto bd = [&](const char* key) { return burndown.at(key).to_number<double>(); };
  CHECK(bd("points") >= 2);
  CHECK(bd("ideal_y2") == Approx(bd("zero_y")));  // the ideal line ends at 0%
  CHECK(bd("ideal_y1") == Approx(12));            // and starts at 100%, the plot's top
  CHECK(bd("last_y") > bd("zero_y"));             // the budget is below zero now
  CHECK(contains(json_str(burndown, "label"), "error budget remaining"));
  {
    std::vector<std::string> ticks;
    for (const auto& t : burndown.at("top").as_array()) ticks.push_back(std::string(t.as_string()));
    CHECK(std::find(ticks.begin(), ticks.end(), "0%") != ticks.end());
  }

  // The burn rates with a dashed line per alert at its factor, labelled with name and severity.
  const json::value burn = browser.eval(
      "(() => { const svg = document.querySelector('#slo-checkout .slo-burn-plot svg');"
      " const grid = [...svg.querySelectorAll('.grid line')].map(l => +l.getAttribute('y1'));"
      " return {lines: [...svg.querySelectorAll('line.alert-threshold')].map(l => ({"
      "   name: l.dataset.alertName, factor: +l.dataset.factor, y: +l.getAttribute('y1'),"
      "   cls: l.getAttribute('class')})),"
      "  labels: [...svg.querySelectorAll('text.threshold-label')].map(t => t.textContent),"
      "  burn_1h: svg.querySelector('path.burn-1h').getAttribute('d').length,"
      "  burn_6h: svg.querySelector('path.burn-6h').getAttribute('d').length,"
      "  bottom: Math.max(...grid)}; })()");
  INFO("burn chart: " << json::serialize(burn));
  const json::array& lines = burn.at("lines").as_array();
  REQUIRE(lines.size() == 2);
  CHECK(json_str(lines[0], "name") == "checkout_page");
  CHECK(lines[0].at("factor").to_number<double>() == 14.4);
  CHECK(contains(json_str(lines[0], "cls"), "threshold-crit"));
  CHECK(json_str(lines[1], "name") == "checkout_ticket");
  CHECK(lines[1].at("factor").to_number<double>() == 6);
  CHECK(contains(json_str(lines[1], "cls"), "threshold-warn"));
  // Higher factor, higher line; both above the chart's bottom (burn rate 0).
  CHECK(lines[0].at("y").to_number<double>() < lines[1].at("y").to_number<double>());
  CHECK(lines[1].at("y").to_number<double>() < burn.at("bottom").to_number<double>());
  const json::array& labels = burn.at("labels").as_array();
  REQUIRE(labels.size() == 2);
  CHECK(contains(labels[0].as_string(), "checkout_page \xC2\xB7 critical"));
  CHECK(contains(labels[1].as_string(), "checkout_ticket \xC2\xB7 warning"));
  CHECK(burn.at("burn_1h").to_number<int>() > 10);
  CHECK(burn.at("burn_6h").to_number<int>() > 10);
  // The time-slice SLO's default alerts: three lines.
  CHECK(browser.eval("document.querySelectorAll('#slo-signup_slices line.alert-threshold').length")
            .to_number<int>() == 3);

  // The card's link shows that SLO's firing alerts only, "show all" the rest again.
  CHECK(browser.eval("document.querySelectorAll('#alerts li.alert').length").to_number<int>() == 3);
  browser.click("#slo-checkout button.slo-alerts");
  CHECK(browser.wait_until(
      "!document.getElementById('alerts-filter').hidden"
      " && document.querySelectorAll('#alerts li.alert').length === 2"
      " && [...document.querySelectorAll('#alerts li.alert')].every(li =>"
      "  li.dataset.slo === 'checkout'"
      "  && li.querySelector('.alert-kpi').textContent === 'SLO Checkout availability')",
      5s));
  browser.click("#alerts-filter button[data-action=all-alerts]");
  CHECK(
      browser.wait_until("document.getElementById('alerts-filter').hidden"
                         " && document.querySelectorAll('#alerts li.alert').length === 3",
                         5s));

  writing = false;
  writer.join();
  CHECK(write_failures == 0);

  browser.eval("window.scrollTo(0, 0)");
  const std::string png = browser.screenshot();
  const std::filesystem::path dir = std::filesystem::path(KPID_BUILD_DIR) / "artifacts";
  std::filesystem::create_directories(dir);
  write_file((dir / "dashboard_slo.png").string(), png);
  std::cout << "dashboard SLO screenshot: " << (dir / "dashboard_slo.png").string() << "\n";

  const std::vector<CdpEvent> events = browser.events();
  const std::vector<std::string> errors = page_errors(events);
  INFO("page errors:\n"
       << [&] {
            std::string s;
            for (const auto& e : errors) s += "  " + e + "\n";
            return s;
          }());
  CHECK(errors.empty());
  CHECK(foreign_requests(events, origin).empty());
  CHECK(count_requests(events, "/api/v1/slos/checkout") >= 1);
}
