// kpictl wait and reload: kpid's lifecycle from a script, over its HTTP endpoints.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ostream>
#include <thread>

#include "command.h"

namespace kpid::ctl {

namespace json = boost::json;

namespace {

using SteadyClock = std::chrono::steady_clock;

constexpr DurationMs kPollInterval = 250;
constexpr DurationMs kProbeTimeout = 2'000;  // one /readyz request
constexpr auto kRepeatAfter = std::chrono::seconds(10);

// The first line of an answer's body, for "answered 503: not ready".
std::string first_line(std::string_view body) {
  std::string line(body.substr(0, body.find('\n')));
  if (line.size() > 200) line = line.substr(0, 200) + "...";
  return line;
}

std::string seconds_text(SteadyClock::duration d) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f s", std::chrono::duration<double>(d).count());
  return text;
}

}  // namespace

int cmd_wait(Context& c) {
  auto limit = duration_flag(c.args, "timeout", 60'000);
  if (!limit) return c.usage(limit.status());
  c.client_options.timeout = std::min(*limit, kProbeTimeout);
  auto api = c.api();
  if (!api) return c.fail(api.status());
  const std::string url = (*api)->url_of("/readyz");
  const auto start = SteadyClock::now();
  const auto deadline = start + std::chrono::milliseconds(*limit);
  std::string why;  // why it was not ready at the last attempt
  auto told = SteadyClock::time_point::min();
  for (;;) {
    auto answer = (*api)->send("GET", "/readyz", "", {});
    const auto now = SteadyClock::now();
    if (answer && answer->status == 200) {
      if (c.json) {
        c.print_json(
            json::object{{"ready", true},
                         {"url", url},
                         {"waited_seconds", std::chrono::duration<double>(now - start).count()}});
      } else {
        c.out << "kpid is ready at " << (*api)->base_url()
              << (why.empty() ? "" : " (after " + seconds_text(now - start) + ")") << "\n";
      }
      return kExitOk;
    }
    if (answer && answer->status != 503) {
      // Anything but "not yet" will not change by waiting: a token is missing, or this is not
      // kpid.
      Status s = status_of_answer(answer->status, answer->body);
      if (answer->status == 404) {
        s = Status::invalid_argument("GET " + url + " answered 404: is --url pointing at kpid?");
      }
      return c.fail(Status(s.code(), "GET " + url + ": " + s.message()));
    }
    const std::string now_why =
        answer ? "answered 503: " + first_line(answer->body) : answer.status().message();
    if (now >= deadline) {
      const std::string message = "kpid at " + url + " is not ready after " +
                                  format_duration(*limit) + " (last: " + now_why + ")";
      if (c.json) {
        c.print_json(
            json::object{{"ready", false},
                         {"url", url},
                         {"waited_seconds", std::chrono::duration<double>(now - start).count()},
                         {"error", message}});
      }
      return c.fail(Status::unavailable(message));
    }
    // Say what it waits for, again when that changes, and every few seconds meanwhile.
    if (now_why != why || now - told >= kRepeatAfter) {
      if (why.empty()) {
        c.err << "kpictl: waiting up to " << format_duration(*limit) << " for kpid at " << url
              << ": " << now_why << "\n";
      } else {
        c.err << "kpictl: still waiting (" << seconds_text(now - start) << "): " << now_why << "\n";
      }
      told = now;
    }
    why = now_why;
    (*api)->close();  // a fresh connection each time, as a restarted kpid needs
    const auto pause = std::min(SteadyClock::duration(std::chrono::milliseconds(kPollInterval)),
                                deadline - SteadyClock::now());
    if (pause > SteadyClock::duration::zero()) std::this_thread::sleep_for(pause);
  }
}

int cmd_reload(Context& c) {
  auto api = c.api();
  if (!api) return c.fail(api.status());
  auto answer = (*api)->raw("POST", "/-/reload", "", {{"Accept", "application/json"}});
  if (!answer) return c.fail(answer.status());
  boost::system::error_code ec;
  const json::value parsed = json::parse(answer->body, ec);
  const json::value* data = ec ? nullptr : field_of(parsed, "data");
  if ((answer->status != 200 && answer->status != 422) || data == nullptr) {
    return c.fail(status_of_answer(answer->status, answer->body));
  }
  auto list = [&](std::string_view key) {
    std::vector<std::string> out;
    const json::value* v = field_of(key == "errors" ? parsed : *data, key);
    if (v != nullptr && v->is_array()) {
      for (const auto& s : v->get_array()) {
        if (s.is_string()) out.emplace_back(s.get_string());
      }
    }
    return out;
  };
  if (c.json) {
    json::object out = data->is_object() ? data->get_object() : json::object{};
    if (answer->status != 200) {
      out["error"] = text_of(parsed, "error");
      out["errors"] = field_of(parsed, "errors") ? *field_of(parsed, "errors") : json::array{};
    }
    c.print_json(out);
    return answer->status == 200 ? kExitOk : kExitRefused;
  }
  if (answer->status != 200) {
    for (const auto& e : list("errors")) c.err << e << "\n";
    c.err << "kpictl: " << text_of(parsed, "error") << "\n";
    return kExitRefused;
  }
  for (const auto& w : list("warnings")) c.err << "warning: " << w << "\n";
  const auto kpis = static_cast<uint64_t>(number_of(*data, "kpis").value_or(0));
  const auto rules = static_cast<uint64_t>(number_of(*data, "alert_rules").value_or(0));
  c.out << "reloaded " << text_of(*data, "config") << ": " << kpis << " KPI"
        << (kpis == 1 ? "" : "s") << ", " << rules << " alert rule" << (rules == 1 ? "" : "s")
        << "\n";
  const auto restart = list("restart_needed");
  if (!restart.empty()) {
    std::string keys;
    for (const auto& k : restart) keys += (keys.empty() ? "" : ", ") + k;
    c.out << "changed, but kept until kpid restarts: " << keys << "\n";
  }
  return kExitOk;
}

}  // namespace kpid::ctl
