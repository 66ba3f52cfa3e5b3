// Fuzzes the TOML config loader and the KPI compiler. Input: the config file's text, optionally
// followed by up to three included files, each after a line "#---"; they are written to
// kpis.d/1.toml... in a private temp dir, where the config file "is", so `include` patterns
// relative to it find them. Patterns that could leave that dir (absolute, "..") are not run:
// a fuzzer must not read /dev/zero. Checked, besides "no crash, no leak, no undefined
// behaviour, no exception":
// - every error has a message and a file, errors are sorted by file, line and column;
// - an accepted config holds values in their documented ranges;
// - every KPI that compiles has a band ordered for its direction, and its value's PromQL (and
//   that of its terms at other windows, as history and baselines ask) parses, as an instant
//   vector, to the same selector with the same range.

#include <unistd.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include <toml++/toml.h>

#include "fuzz_check.h"
#include "kpid/config/config.h"
#include "kpid/core/time.h"
#include "kpid/kpi/band.h"
#include "kpid/kpi/definition.h"
#include "kpid/query/promql.h"

namespace kpid::fuzz {
namespace {

constexpr std::string_view kSeparator = "\n#---\n";
constexpr size_t kIncludedFiles = 3;
constexpr DurationMs kHour = 3'600'000;
constexpr DurationMs kDay = 24 * kHour;

// A temp dir with kpis.d/1.toml.. for the included files, removed at exit.
class Sandbox {
 public:
  Sandbox() {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern =
        std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/kpid-config-fuzz-XXXXXX";
    check(mkdtemp(pattern.data()) != nullptr, "cannot create a temp dir", pattern);
    dir_ = pattern;
    std::filesystem::create_directory(dir_ / "kpis.d");
    for (size_t i = 0; i < kIncludedFiles; ++i) write(i, "");
  }
  ~Sandbox() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  std::string dir() const { return dir_.string(); }
  std::string config_path() const { return (dir_ / "kpid.toml").string(); }

  // Rewrites included file i when its text changed (most inputs have none: no disk writes).
  void write(size_t i, std::string_view text) {
    if (written_[i] == text && initialized_[i]) return;
    std::ofstream out(dir_ / "kpis.d" / (std::to_string(i + 1) + ".toml"),
                      std::ios::binary | std::ios::trunc);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    check(static_cast<bool>(out), "cannot write an included file");
    written_[i] = text;
    initialized_[i] = true;
  }

 private:
  std::filesystem::path dir_;
  std::string written_[kIncludedFiles];
  bool initialized_[kIncludedFiles] = {};
};

// Whether the config's include patterns stay inside the sandbox. Only documents that could
// name `include` (also through a \u escape in a quoted key) are parsed for it.
bool includes_stay_inside(std::string_view text) {
  if (text.find("include") == std::string_view::npos &&
      text.find("\\u") == std::string_view::npos && text.find("\\U") == std::string_view::npos) {
    return true;
  }
  toml::table root;
  try {
    root = toml::parse(text);
  } catch (const toml::parse_error&) {
    return true;  // the loader refuses it before looking at includes
  }
  const toml::array* patterns = root["include"].as_array();
  if (patterns == nullptr) return true;
  for (const auto& p : *patterns) {
    const std::string* s = p.is_string() ? &p.as_string()->get() : nullptr;
    if (s == nullptr) continue;
    if (s->starts_with("/") || s->find("..") != std::string::npos) return false;
  }
  return true;
}

void check_errors(const std::vector<config::ConfigError>& errors, const std::string& dir) {
  for (size_t i = 0; i < errors.size(); ++i) {
    const auto& e = errors[i];
    check(!e.message.empty(), "config error without message", e.to_string());
    check(!e.file.empty(), "config error without file", e.to_string());
    check(e.file.starts_with(dir + "/"), "config error names a file outside the config",
          e.to_string());
    check(e.line >= 0 && e.column >= 0, "config error at a negative position", e.to_string());
    if (i > 0) {
      const auto& p = errors[i - 1];
      check(std::tie(p.file, p.line, p.column) <= std::tie(e.file, e.line, e.column),
            "config errors are not sorted", p.to_string() + " / " + e.to_string());
    }
  }
}

bool finite(double v) { return std::isfinite(v); }

// The ranges config.h and README document, for a config that loaded without error.
void check_ranges(const config::Config& c) {
  check(!c.storage.data_dir.empty(), "empty data_dir accepted");
  check(c.storage.limits.max_series >= 1 && c.storage.checkpoint_interval >= 1000 &&
            c.storage.head_max_samples >= 1000,
        "storage limit out of range accepted");
  check(c.storage.retention.raw >= 2 * kHour && c.storage.retention.rollup_5m >= 2 * kHour &&
            c.storage.retention.rollup_1h >= 2 * kHour,
        "retention shorter than a chunk window accepted");
  check(parse_host_port(c.http.listen).is_ok(), "bad http.listen accepted");
  check(c.line.listen.empty() || parse_host_port(c.line.listen).is_ok(),
        "bad line.listen accepted");
  check(c.http.threads >= 1 && c.http.max_body_bytes >= 1 && c.line.max_line_bytes >= 16,
        "http/line limit out of range accepted");
  check(c.query.lookback_delta >= 1 && c.query.max_points_per_series >= 1,
        "query limit out of range accepted");
  for (const auto& k : c.kpis) {
    check(!k.id.empty() && k.id.size() <= 128, "bad KPI id accepted", k.id);
    const std::vector<const kpi::TermOptions*> terms =
        k.value.ratio ? std::vector{&k.value.term, &k.value.denominator}
                      : std::vector{&k.value.term};
    for (const auto* t : terms) {
      check(!t->selector.empty() && t->window >= 1000, "bad KPI term accepted", k.id);
      check(t->quantile >= 0 && t->quantile <= 1, "quantile outside [0, 1] accepted", k.id);
    }
    check(finite(k.value.scale) && k.value.scale != 0, "bad ratio scale accepted", k.id);
    if (k.band) {
      const auto& b = *k.band;
      check(finite(b.warn) && finite(b.crit) && finite(b.warn_low) && finite(b.crit_low) &&
                finite(b.warn_high) && finite(b.crit_high) && (!b.target || finite(*b.target)),
            "band with a non-finite threshold accepted", k.id);
    }
    if (k.baseline) {
      const auto& b = *k.baseline;
      check(b.window >= kHour && b.window <= 366 * kDay, "baseline window out of range", k.id);
      check(b.method != "seasonal" || b.window >= 14 * kDay, "short seasonal window", k.id);
      check(b.quantile_low >= 0 && b.quantile_low < b.quantile_high && b.quantile_high <= 1,
            "baseline quantiles out of order accepted", k.id);
      check(b.k > 0 && finite(b.k) && b.alpha > 0 && b.alpha <= 1 && b.refresh >= 60'000,
            "baseline parameter out of range accepted", k.id);
    }
    for (const auto& a : k.alerts) {
      check(a.for_duration >= 0 && a.clear_for >= 0 && a.hysteresis >= 0 && finite(a.hysteresis),
            "alert rule parameter out of range accepted", k.id);
      check(!a.repeat_interval || *a.repeat_interval >= 60'000, "short repeat_interval", k.id);
    }
  }
}

bool ordered(kpi::Direction d, const kpi::Band& b) {
  switch (d) {
    case kpi::Direction::kLowerIsBetter:
      return b.warn < b.crit && (!b.target || *b.target < b.warn);
    case kpi::Direction::kHigherIsBetter:
      return b.warn > b.crit && (!b.target || *b.target > b.warn);
    case kpi::Direction::kInRange:
      return b.crit_low < b.warn_low && b.warn_low < b.warn_high && b.warn_high < b.crit_high &&
             (!b.target || (*b.target >= b.warn_low && *b.target <= b.warn_high));
  }
  return false;
}

// A value strictly beyond a threshold is in that level; on it, in the level below.
void check_classify(kpi::Direction d, const kpi::Band& b, const std::string& id) {
  using kpi::Health;
  auto at = [&](double v, Health want) {
    check(kpi::classify(d, b, v) == want, "a value is classified in the wrong level",
          id + ": " + std::string(kpi::health_name(kpi::classify(d, b, v))) + " instead of " +
              std::string(kpi::health_name(want)));
  };
  constexpr double kInf = HUGE_VAL;
  switch (d) {
    case kpi::Direction::kLowerIsBetter:
      at(b.warn, Health::kOk);
      at(std::nextafter(b.warn, kInf), Health::kWarn);
      at(b.crit, Health::kWarn);
      at(std::nextafter(b.crit, kInf), Health::kCrit);
      break;
    case kpi::Direction::kHigherIsBetter:
      at(b.warn, Health::kOk);
      at(std::nextafter(b.warn, -kInf), Health::kWarn);
      at(b.crit, Health::kWarn);
      at(std::nextafter(b.crit, -kInf), Health::kCrit);
      break;
    case kpi::Direction::kInRange:
      at(b.warn_low, Health::kOk);
      at(b.warn_high, Health::kOk);
      at(b.crit_low, Health::kWarn);
      at(b.crit_high, Health::kWarn);
      at(std::nextafter(b.crit_low, -kInf), Health::kCrit);
      at(std::nextafter(b.crit_high, kInf), Health::kCrit);
      break;
  }
  at(std::nan(""), Health::kNoData);
}

// The matrix selector inside a compiled term: across(fn(..., selector[range])).
const query::MatrixSelector* find_matrix(const query::Expr& e) {
  if (const auto* m = std::get_if<query::MatrixSelector>(&e.node)) return m;
  if (const auto* a = std::get_if<query::AggregateExpr>(&e.node)) return find_matrix(*a->expr);
  if (const auto* c = std::get_if<query::Call>(&e.node)) {
    for (const auto& arg : c->args) {
      if (const auto* m = find_matrix(*arg)) return m;
    }
  }
  return nullptr;
}

void check_term(const kpi::Term& term, const std::string& id) {
  // The configured window and those history and baselines read (whole 5m and 1h buckets).
  std::vector<DurationMs> windows = {term.window};
  if (term.window < (DurationMs{1} << 60)) {
    windows.push_back((term.window + 299'999) / 300'000 * 300'000);
    windows.push_back((term.window + kHour - 1) / kHour * kHour);
  }
  for (DurationMs window : windows) {
    const std::string text = term.promql(window);
    auto expr = query::parse_promql(text);
    check(expr.is_ok(), "a compiled KPI term does not parse",
          id + ": " + text + ": " + (expr ? "" : expr.status().message()));
    check((*expr)->type == query::ValueType::kVector, "a KPI term is not an instant vector", text);
    const query::MatrixSelector* m = find_matrix(**expr);
    check(m != nullptr && m->range == window, "a KPI term reads another range", text);
    const auto& got = m->selector.matchers;
    bool same = got.size() == term.matchers.size() && !m->selector.has_offset;
    for (size_t i = 0; same && i < got.size(); ++i) {
      same = got[i].type() == term.matchers[i].type() && got[i].name() == term.matchers[i].name() &&
             got[i].value() == term.matchers[i].value();
    }
    check(same, "a KPI term's PromQL selects other series than its selector",
          id + ": " + term.selector + " -> " + text);
  }
  auto round_trip = parse_duration(format_duration(term.window));
  check(round_trip.is_ok() && *round_trip == term.window, "a window does not print and parse back",
        format_duration(term.window));
}

void check_definitions(const kpi::CompileResult& compiled) {
  for (const auto& e : compiled.errors) {
    check(!e.message.empty() && !e.key.empty(), "KPI error without message or key", e.to_string());
  }
  for (const auto& d : compiled.kpis) {
    if (d.band) {
      check(kpi::check_band(d.direction, *d.band).empty(), "compiled band fails its check", d.id);
      check(ordered(d.direction, *d.band), "compiled band is not ordered for its direction", d.id);
      check_classify(d.direction, *d.band, d.id);
    }
    check(d.stale_after > 0, "KPI without stale_after", d.id);
    check_term(d.numerator, d.id);
    if (d.denominator) check_term(*d.denominator, d.id);
    auto value = query::parse_promql(d.promql());
    check(value.is_ok() && (*value)->type == query::ValueType::kVector,
          "a compiled KPI's PromQL does not parse as an instant vector", d.promql());
  }
}

}  // namespace
}  // namespace kpid::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kpid;
  using namespace kpid::fuzz;
  static Sandbox sandbox;
  std::string_view rest(reinterpret_cast<const char*>(data), size);

  size_t cut = rest.find(kSeparator);
  const std::string_view text = rest.substr(0, cut);
  for (size_t i = 0; i < kIncludedFiles; ++i) {
    std::string_view part;
    if (cut != std::string_view::npos) {
      rest.remove_prefix(cut + kSeparator.size());
      cut = rest.find(kSeparator);
      part = rest.substr(0, cut);
    }
    sandbox.write(i, part);
  }
  if (!includes_stay_inside(text)) return 0;

  const std::string path = sandbox.config_path();
  const config::LoadResult loaded = config::parse_config(text, path, config::Overrides{});
  check_errors(loaded.errors, sandbox.dir());
  if (!loaded.ok()) return 0;
  check_ranges(loaded.config);

  const kpi::CompileResult compiled = kpi::compile(loaded.config.kpis);
  check_definitions(compiled);
  for (const auto& w : kpi::lint(loaded.config.kpis)) {
    check(!w.message.empty(), "lint warning without message", w.to_string());
  }
  return 0;
}
