// The functions over instant vectors and scalars (everything but the range functions), as
// Prometheus 2.42 evaluates them (promql/functions.go): element-wise math, clamp and round, the
// calendar functions, timestamp, absent, histogram_quantile, label_replace/label_join and the
// sort functions. All but label_replace, label_join and the sort functions drop __name__.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numbers>
#include <span>
#include <string>
#include <unordered_map>
#include <utility>

#include <boost/regex.hpp>

#include "evaluator.h"
#include "histogram_quantile.h"
#include "kpid/core/stale_marker.h"
#include "series_ops.h"

namespace kpid::query::detail {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr std::string_view kBucketLabel = "le";

// The labels without `name` (and `also`, when given).
LabelsPtr without(const LabelsPtr& labels, std::string_view name, std::string_view also = {}) {
  if (labels->get(name).empty() && (also.empty() || labels->get(also).empty())) return labels;
  std::vector<Label> items;
  items.reserve(labels->size());
  for (const auto& l : labels->items()) {
    if (l.name != name && (also.empty() || l.name != also)) items.push_back(l);
  }
  return owned(std::move(items));
}

// `labels` with `name` set to `value`, or removed when `value` is empty (as Prometheus' builder).
LabelsPtr with_label(const Labels& labels, const std::string& name, std::string value) {
  std::vector<Label> items;
  items.reserve(labels.size() + 1);
  for (const auto& l : labels.items()) {
    if (l.name != name) items.push_back(l);
  }
  if (!value.empty()) items.push_back({name, std::move(value)});
  return owned(std::move(items));
}

const Expr& unwrap_parens(const Expr& e) {
  const Expr* p = &e;
  while (const auto* paren = std::get_if<ParenExpr>(&p->node)) p = paren->expr.get();
  return *p;
}

// Go's math.Max and math.Min: an infinity wins over NaN, NaN over numbers, +0 over -0 (Max).
double go_max(double x, double y) {
  if (std::isinf(x) && x > 0) return x;
  if (std::isinf(y) && y > 0) return y;
  if (std::isnan(x) || std::isnan(y)) return kNaN;
  if (x == 0 && x == y) return std::signbit(x) ? y : x;
  return x > y ? x : y;
}
double go_min(double x, double y) {
  if (std::isinf(x) && x < 0) return x;
  if (std::isinf(y) && y < 0) return y;
  if (std::isnan(x) || std::isnan(y)) return kNaN;
  if (x == 0 && x == y) return std::signbit(x) ? x : y;
  return x < y ? x : y;
}

double simple(Function f, double v) {
  switch (f) {
    case Function::kAbs: return std::fabs(v);
    case Function::kCeil: return std::ceil(v);
    case Function::kFloor: return std::floor(v);
    case Function::kExp: return std::exp(v);
    case Function::kLn: return std::log(v);
    case Function::kLog2: return std::log2(v);
    case Function::kLog10: return std::log10(v);
    case Function::kSqrt: return std::sqrt(v);
    case Function::kSgn: return v < 0 ? -1.0 : v > 0 ? 1.0 : v;
    case Function::kAcos: return std::acos(v);
    case Function::kAcosh: return std::acosh(v);
    case Function::kAsin: return std::asin(v);
    case Function::kAsinh: return std::asinh(v);
    case Function::kAtan: return std::atan(v);
    case Function::kAtanh: return std::atanh(v);
    case Function::kCos: return std::cos(v);
    case Function::kCosh: return std::cosh(v);
    case Function::kSin: return std::sin(v);
    case Function::kSinh: return std::sinh(v);
    case Function::kTan: return std::tan(v);
    case Function::kTanh: return std::tanh(v);
    case Function::kDeg: return v * 180 / std::numbers::pi;
    case Function::kRad: return v * std::numbers::pi / 180;
    default: return kNaN;
  }
}

// The calendar as Go's time package computes it for time.Unix(sec, 0).UTC(), including its
// wrap-around for seconds beyond its range (so that NaN, which Go converts to the smallest
// int64, gives Prometheus' answer too).
struct GoDate {
  int64_t year;
  int month;  // 1..12
  int day;    // 1..31
  int yday;   // 0-based
  int hour;
  int minute;
  int weekday;  // Sunday = 0
};

bool go_is_leap(int64_t year) { return year % 4 == 0 && (year % 100 != 0 || year % 400 == 0); }

GoDate go_date(int64_t sec) {
  constexpr uint64_t kDay = 86400;
  constexpr uint64_t kDaysPer400 = 365 * 400 + 97;
  constexpr uint64_t kDaysPer100 = 365 * 100 + 24;
  constexpr uint64_t kDaysPer4 = 365 * 4 + 1;
  constexpr int64_t kAbsoluteZeroYear = -292277022399;
  // unixToInternal + internalToAbsolute, added with int64 wrap-around as Go does.
  constexpr uint64_t kUnixToAbsolute = 9223372028715321600ULL;
  const uint64_t abs = static_cast<uint64_t>(sec) + kUnixToAbsolute;
  GoDate out{};
  uint64_t d = abs / kDay;
  uint64_t n = d / kDaysPer400;
  uint64_t y = 400 * n;
  d -= kDaysPer400 * n;
  n = d / kDaysPer100;
  n -= n >> 2;
  y += 100 * n;
  d -= kDaysPer100 * n;
  n = d / kDaysPer4;
  y += 4 * n;
  d -= kDaysPer4 * n;
  n = d / 365;
  n -= n >> 2;
  y += n;
  d -= 365 * n;
  out.year = static_cast<int64_t>(y) + kAbsoluteZeroYear;
  out.yday = static_cast<int>(d);
  int day = out.yday;
  static constexpr int kDaysBefore[] = {0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334, 365};
  bool leap_day = false;
  if (go_is_leap(out.year)) {
    if (day > 31 + 29 - 1) {
      --day;
    } else if (day == 31 + 29 - 1) {
      out.month = 2;
      out.day = 29;
      leap_day = true;
    }
  }
  if (!leap_day) {
    int month = day / 31;
    const int end = kDaysBefore[month + 1];
    int begin = 0;
    if (day >= end) {
      ++month;
      begin = end;
    } else {
      begin = kDaysBefore[month];
    }
    out.month = month + 1;
    out.day = day - begin + 1;
  }
  out.hour = static_cast<int>(abs % kDay / 3600);
  out.minute = static_cast<int>(abs % 3600 / 60);
  out.weekday = static_cast<int>((abs + kDay) % (7 * kDay) / kDay);  // absolute day 0: Monday
  return out;
}

// Go's int64(f) on amd64: truncation, and the smallest int64 for NaN and out-of-range values.
int64_t go_int64(double v) {
  if (!(v >= -9223372036854775808.0 && v < 9223372036854775808.0)) {
    return std::numeric_limits<int64_t>::min();
  }
  return static_cast<int64_t>(v);
}

double calendar(Function f, int64_t sec) {
  const GoDate d = go_date(sec);
  switch (f) {
    case Function::kMinute: return d.minute;
    case Function::kHour: return d.hour;
    case Function::kDayOfWeek: return d.weekday;
    case Function::kDayOfMonth: return d.day;
    case Function::kDayOfYear: return d.yday + 1;
    case Function::kDaysInMonth: {
      static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
      return d.month == 2 && go_is_leap(d.year) ? 29 : kDays[d.month - 1];
    }
    case Function::kMonth: return d.month;
    case Function::kYear: return static_cast<double>(d.year);
    default: return kNaN;
  }
}

bool is_calendar(Function f) {
  switch (f) {
    case Function::kMinute:
    case Function::kHour:
    case Function::kDayOfWeek:
    case Function::kDayOfMonth:
    case Function::kDayOfYear:
    case Function::kDaysInMonth:
    case Function::kMonth:
    case Function::kYear: return true;
    default: return false;
  }
}

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

// Go's named groups (?P<name>re) in the (?<name>re) form Boost reads.
std::string perl_syntax(const std::string& go_regex) {
  std::string out;
  out.reserve(go_regex.size());
  for (size_t i = 0; i < go_regex.size(); ++i) {
    if (go_regex[i] == '\\' && i + 1 < go_regex.size()) {
      out += go_regex.substr(i, 2);  // an escaped character is never a group
      ++i;
    } else if (go_regex.compare(i, 4, "(?P<") == 0) {
      out += "(?<";
      i += 3;
    } else {
      out.push_back(go_regex[i]);
    }
  }
  return out;
}

// Go's Regexp.ExpandString: $1, ${1}, $name, ${name}, $$; an unknown or unmatched group gives
// "", a malformed reference stays literal.
std::string expand(std::string_view tmpl, const boost::smatch& m) {
  std::string out;
  while (!tmpl.empty()) {
    const size_t dollar = tmpl.find('$');
    if (dollar == std::string_view::npos) break;
    out.append(tmpl.substr(0, dollar));
    tmpl.remove_prefix(dollar + 1);
    if (!tmpl.empty() && tmpl.front() == '$') {
      out.push_back('$');
      tmpl.remove_prefix(1);
      continue;
    }
    std::string_view rest = tmpl;
    const bool brace = !rest.empty() && rest.front() == '{';
    if (brace) rest.remove_prefix(1);
    size_t len = 0;
    while (len < rest.size() && is_name_char(rest[len])) ++len;
    if (len == 0 || (brace && (len >= rest.size() || rest[len] != '}'))) {
      out.push_back('$');  // malformed: the '$' is text
      continue;
    }
    const std::string name(rest.substr(0, len));
    tmpl = rest.substr(len + (brace ? 1 : 0));
    int64_t num = 0;
    for (char c : name) {
      if (c < '0' || c > '9' || num >= 100'000'000) {
        num = -1;
        break;
      }
      num = num * 10 + (c - '0');
    }
    if (name.size() > 1 && name[0] == '0') num = -1;  // no leading zeros
    if (num >= 0) {
      if (static_cast<size_t>(num) < m.size() && m[static_cast<int>(num)].matched) {
        out += m[static_cast<int>(num)].str();
      }
    } else {
      try {
        const auto& group = m[name];
        if (group.matched) out += group.str();
      } catch (const std::exception&) {
        // No group of that name: nothing.
      }
    }
  }
  out.append(tmpl);
  return out;
}

// facette/natsort's Compare (Prometheus' sort_by_label): digit runs compare as integers, other
// runs as strings; whether a sorts before b.
std::vector<std::string_view> chunks(std::string_view s) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < s.size()) {
    const bool digit = s[i] >= '0' && s[i] <= '9';
    size_t j = i;
    while (j < s.size() && (s[j] >= '0' && s[j] <= '9') == digit) ++j;
    out.push_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

std::optional<int64_t> atoi_go(std::string_view s) {
  if (s.empty() || s.size() > 18) return std::nullopt;  // beyond int64: Atoi fails
  int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  return v;
}

bool natural_less(std::string_view a, std::string_view b) {
  const auto ca = chunks(a);
  const auto cb = chunks(b);
  for (size_t i = 0; i < ca.size(); ++i) {
    if (i >= cb.size()) return false;
    const auto ia = atoi_go(ca[i]);
    const auto ib = atoi_go(cb[i]);
    if (ia && ib) {
      if (*ia != *ib) return *ia < *ib;
    } else if (ca[i] != cb[i]) {
      return ca[i] < cb[i];
    }
    if (i == ca.size() - 1) return true;
    if (i == cb.size() - 1) return false;
  }
  return false;
}

// The labels absent() and absent_over_time() give, from the selector's matchers in order (not
// __name__): an equality matcher sets its label unless it is already set; any other matcher, or
// a second equality, removes it (so {a!="x", a="y"} gives a="y" and {a="y", a!="x"} nothing, as
// in Prometheus). An empty value removes the label too.
LabelsPtr absent_labels(const Expr& arg) {
  const Expr& e = unwrap_parens(arg);
  const VectorSelector* vs = std::get_if<VectorSelector>(&e.node);
  if (const auto* ms = std::get_if<MatrixSelector>(&e.node)) vs = &ms->selector;
  std::vector<Label> items;
  if (vs != nullptr) {
    for (const auto& m : vs->matchers) {
      if (m.name() == kMetricNameLabel) continue;
      auto it = std::find_if(items.begin(), items.end(),
                             [&](const Label& l) { return l.name == m.name(); });
      if (m.type() == MatchType::kEqual && it == items.end()) {
        if (!m.value().empty()) items.push_back({m.name(), m.value()});
      } else if (it != items.end()) {
        items.erase(it);
      }
    }
  }
  return owned(std::move(items));
}

}  // namespace

size_t Evaluator::step_of(TimestampMs t) const {
  return static_cast<size_t>((t - grid_.start) / grid_.step);
}

Result<Value> Evaluator::eval_function(const Call& n) {
  const Function f = n.function;
  Value v;
  v.type = ValueType::kVector;
  switch (f) {
    case Function::kTime:
    case Function::kPi:
      v.type = ValueType::kScalar;
      for (size_t k = 0; k < grid_.count; ++k) {
        v.scalars.push_back(f == Function::kPi ? std::numbers::pi
                                               : static_cast<double>(grid_.at(k)) / 1000);
      }
      return v;
    case Function::kVector: {
      auto arg = eval(*n.args[0]);
      if (!arg) return arg;
      Series s{std::make_shared<const Labels>(), {}};
      for (size_t k = 0; k < grid_.count; ++k) s.points.push_back({grid_.at(k), arg->scalars[k]});
      v.series.push_back(std::move(s));
      return v;
    }
    case Function::kScalar: {
      // The single element's value, NaN when there are none or several.
      auto arg = eval(*n.args[0]);
      if (!arg) return arg;
      v.type = ValueType::kScalar;
      v.scalars.assign(grid_.count, kNaN);
      std::vector<size_t> seen(grid_.count, 0);
      for (const auto& s : arg->series) {
        for (const auto& p : s.points) {
          const size_t k = step_of(p.timestamp);
          v.scalars[k] = ++seen[k] == 1 ? p.value : kNaN;
        }
      }
      return v;
    }
    case Function::kAbsent: return eval_absent(n);
    case Function::kHistogramQuantile: return eval_histogram_quantile(n);
    case Function::kLabelReplace:
    case Function::kLabelJoin: return eval_label_function(n);
    case Function::kTimestamp: {
      const Expr& arg = unwrap_parens(*n.args[0]);
      if (const auto* vs = std::get_if<VectorSelector>(&arg.node)) return eval_timestamp(*vs);
      // Of any other expression: the evaluation time.
      auto in = eval(arg);
      if (!in) return in;
      for (auto& s : in->series) {
        s.labels = drop_name(s.labels);
        for (auto& p : s.points) p.value = static_cast<double>(p.timestamp) / 1000;
      }
      if (auto st = sort_and_merge(in->series); !st) return st;
      return in;
    }
    case Function::kSort:
    case Function::kSortDesc:
    case Function::kSortByLabel:
    case Function::kSortByLabelDesc: return eval_sort(n);
    default: break;
  }
  if (is_calendar(f) && n.args.empty()) {
    // vector(time()) with the calendar applied; Go truncates milliseconds toward zero.
    Series s{std::make_shared<const Labels>(), {}};
    for (size_t k = 0; k < grid_.count; ++k) {
      s.points.push_back({grid_.at(k), calendar(f, grid_.at(k) / 1000)});
    }
    v.series.push_back(std::move(s));
    return v;
  }

  // Element-wise over the first argument, with the others scalars (one value per step).
  auto in = eval(*n.args[0]);
  if (!in) return in;
  std::vector<std::vector<double>> scalars;
  for (size_t i = 1; i < n.args.size(); ++i) {
    auto a = eval(*n.args[i]);
    if (!a) return a;
    scalars.push_back(std::move(a->scalars));
  }
  for (auto& s : in->series) {
    s.labels = drop_name(s.labels);
    size_t out = 0;
    for (const auto& p : s.points) {
      const size_t k = step_of(p.timestamp);
      double x = p.value;
      switch (f) {
        case Function::kRound: {
          // Ties round up; the inverse of to_nearest makes fewer float errors, as Prometheus.
          const double inverse = 1.0 / (scalars.empty() ? 1.0 : scalars[0][k]);
          x = std::floor(x * inverse + 0.5) / inverse;
          break;
        }
        case Function::kClamp: {
          const double lo = scalars[0][k];
          const double hi = scalars[1][k];
          if (hi < lo) continue;  // no output at this step
          x = go_max(lo, go_min(hi, x));
          break;
        }
        case Function::kClampMin: x = go_max(x, scalars[0][k]); break;
        case Function::kClampMax: x = go_min(x, scalars[0][k]); break;
        default: x = is_calendar(f) ? calendar(f, go_int64(x)) : simple(f, x); break;
      }
      s.points[out++] = {p.timestamp, x};
    }
    s.points.resize(out);
  }
  if (auto st = sort_and_merge(in->series); !st) return st;
  return in;
}

Result<Value> Evaluator::eval_timestamp(const VectorSelector& vs) {
  // The time of the sample each step sees, not the step's time: read raw samples.
  Value v;
  v.type = ValueType::kVector;
  const TimestampMs first = grid_.start - vs.offset;
  const TimestampMs last = grid_.last() - vs.offset;
  for (const auto& ref : store_.select(vs.matchers)) {
    if (auto st = guard_.check(); !st) return st;
    Series s{drop_name(ref.labels), {}};
    samples_.clear();
    if (auto st = store_.read(ref.id, first - lookback_ + 1, last, samples_); !st) return st;
    if (auto st = guard_.hold(samples_.size()); !st) return st;
    size_t next = 0;
    for (size_t k = 0; k < grid_.count; ++k) {
      const TimestampMs t = grid_.at(k) - vs.offset;
      while (next < samples_.size() && samples_[next].timestamp <= t) ++next;
      if (next > 0 && samples_[next - 1].timestamp > t - lookback_ &&
          !is_stale_marker(samples_[next - 1].value)) {
        s.points.push_back({grid_.at(k), static_cast<double>(samples_[next - 1].timestamp) / 1000});
      }
    }
    guard_.release(samples_.size());
    ++stats_.raw_reads;
    if (!s.points.empty()) v.series.push_back(std::move(s));
  }
  if (auto st = sort_and_merge(v.series); !st) return st;
  return v;
}

Result<Value> Evaluator::eval_absent(const Call& n) {
  auto in = eval(*n.args[0]);
  if (!in) return in;
  return absent_steps(*in, *n.args[0]);
}

Value Evaluator::absent_steps(const Value& in, const Expr& arg) const {
  std::vector<bool> present(grid_.count, false);
  for (const auto& s : in.series) {
    for (const auto& p : s.points) present[step_of(p.timestamp)] = true;
  }
  Value v;
  v.type = ValueType::kVector;
  Series s{absent_labels(arg), {}};
  for (size_t k = 0; k < grid_.count; ++k) {
    if (!present[k]) s.points.push_back({grid_.at(k), 1});
  }
  if (!s.points.empty()) v.series.push_back(std::move(s));
  return v;
}

Result<Value> Evaluator::eval_histogram_quantile(const Call& n) {
  auto phi = eval(*n.args[0]);
  if (!phi) return phi;
  auto in = eval(*n.args[1]);
  if (!in) return in;
  // One histogram per label set without `le` (__name__ included, so two metrics are two
  // histograms, which then clash once __name__ is gone).
  std::unordered_map<std::string, size_t> index;
  struct Histogram {
    std::vector<std::pair<size_t, double>> buckets;  // series and bound
  };
  std::vector<Histogram> hists;
  std::vector<Series> out;
  for (size_t i = 0; i < in->series.size(); ++i) {
    const LabelsPtr& labels = in->series[i].labels;
    const auto bound = parse_bucket_bound(labels->get(kBucketLabel));
    if (!bound) continue;  // no or a malformed `le`: not a bucket
    const LabelsPtr key = without(labels, kBucketLabel);
    auto [it, inserted] = index.try_emplace(key->encode(), hists.size());
    if (inserted) {
      hists.emplace_back();
      out.push_back({without(labels, kBucketLabel, kMetricNameLabel), {}});
    }
    hists[it->second].buckets.emplace_back(i, *bound);
  }
  // Each series' point at the current step, if any.
  std::vector<size_t> cursor(in->series.size(), 0);
  std::vector<Bucket> buckets;
  for (size_t k = 0; k < grid_.count; ++k) {
    if (auto st = guard_.tick(); !st) return st;
    const TimestampMs t = grid_.at(k);
    for (size_t h = 0; h < hists.size(); ++h) {
      buckets.clear();
      for (const auto& [i, bound] : hists[h].buckets) {
        const auto& points = in->series[i].points;
        if (cursor[i] < points.size() && points[cursor[i]].timestamp == t) {
          buckets.push_back({bound, points[cursor[i]++].value});
        }
      }
      if (!buckets.empty()) out[h].points.push_back({t, bucket_quantile(phi->scalars[k], buckets)});
    }
  }
  Value v;
  v.type = ValueType::kVector;
  v.series = std::move(out);
  if (auto st = sort_and_merge(v.series); !st) return st;
  return v;
}

Result<Value> Evaluator::eval_label_function(const Call& n) {
  auto in = eval(*n.args[0]);
  if (!in) return in;
  std::vector<std::string> strings;
  for (size_t i = 1; i < n.args.size(); ++i) {
    auto s = eval(*n.args[i]);
    if (!s) return s;
    strings.push_back(std::move(s->string));
  }
  // Prometheus raises these whether or not the vector has elements.
  if (n.function == Function::kLabelReplace) {
    const std::string& dst = strings[0];
    const std::string& repl = strings[1];
    const std::string& src = strings[2];
    const std::string& regex = strings[3];
    boost::regex re;
    try {
      re = boost::regex("^(?:" + perl_syntax(regex) + ")$", boost::regex::perl);
    } catch (const boost::regex_error&) {
      return Status::invalid_argument("invalid regular expression in label_replace(): " + regex);
    }
    if (!valid_label_name(dst)) {
      return Status::invalid_argument("invalid destination label name in label_replace(): " + dst);
    }
    for (auto& s : in->series) {
      const std::string value(s.labels->get(src));
      boost::smatch m;
      bool matched = false;
      try {
        matched = boost::regex_match(value, m, re);
      } catch (const std::runtime_error&) {
        matched = false;  // pathological backtracking: as no match
      }
      if (matched) s.labels = with_label(*s.labels, dst, expand(repl, m));
    }
  } else {
    const std::string& dst = strings[0];
    const std::string& sep = strings[1];
    for (size_t i = 2; i < strings.size(); ++i) {
      if (!valid_label_name(strings[i])) {
        return Status::invalid_argument("invalid source label name in label_join(): " + strings[i]);
      }
    }
    if (!valid_label_name(dst)) {
      return Status::invalid_argument("invalid destination label name in label_join(): " + dst);
    }
    for (auto& s : in->series) {
      std::string joined;
      for (size_t i = 2; i < strings.size(); ++i) {
        if (i > 2) joined += sep;
        joined += s.labels->get(strings[i]);
      }
      s.labels = with_label(*s.labels, dst, std::move(joined));
    }
  }
  if (auto st = sort_and_merge(in->series); !st) return st;
  return in;
}

Result<Value> Evaluator::eval_sort(const Call& n) {
  auto in = eval(*n.args[0]);
  if (!in) return in;
  // Order only shows in an instant query's vector (the engine keeps it there); a range query's
  // series are ordered by labels.
  if (grid_.range_query) return in;
  std::vector<std::string> names;
  for (size_t i = 1; i < n.args.size(); ++i) {
    auto s = eval(*n.args[i]);
    if (!s) return s;
    names.push_back(std::move(s->string));
  }
  auto value = [](const Series& s) { return s.points.front().value; };
  auto labels_less = [](const Series& a, const Series& b) {
    return a.labels->items() < b.labels->items();
  };
  std::stable_sort(in->series.begin(), in->series.end(), labels_less);
  switch (n.function) {
    case Function::kSort:
      // Ascending, NaN last.
      std::stable_sort(in->series.begin(), in->series.end(), [&](const Series& a, const Series& b) {
        return !std::isnan(value(a)) && (std::isnan(value(b)) || value(a) < value(b));
      });
      break;
    case Function::kSortDesc:
      // Descending, NaN last.
      std::stable_sort(in->series.begin(), in->series.end(), [&](const Series& a, const Series& b) {
        return !std::isnan(value(a)) && (std::isnan(value(b)) || value(a) > value(b));
      });
      break;
    default: {
      const bool desc = n.function == Function::kSortByLabelDesc;
      // By each named label's value in natural order, then by all labels.
      std::stable_sort(in->series.begin(), in->series.end(), [&](const Series& a, const Series& b) {
        for (const auto& name : names) {
          const std::string_view va = a.labels->get(name);
          const std::string_view vb = b.labels->get(name);
          if (va == vb) continue;
          return desc ? !natural_less(va, vb) : natural_less(va, vb);
        }
        return desc ? labels_less(b, a) : labels_less(a, b);
      });
      break;
    }
  }
  return in;
}

}  // namespace kpid::query::detail
