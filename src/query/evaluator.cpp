#include "evaluator.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <unordered_map>
#include <utility>

#include "functions.h"
#include "kpid/core/stale_marker.h"
#include "series_ops.h"

namespace kpid::query::detail {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr size_t kNone = std::numeric_limits<size_t>::max();

// Floor division and modulo that are right for negative timestamps too.
TimestampMs floor_to(TimestampMs t, DurationMs width) {
  TimestampMs q = t / width;
  if (t % width != 0 && t < 0) --q;
  return q * width;
}
TimestampMs ceil_to(TimestampMs t, DurationMs width) {
  const TimestampMs f = floor_to(t, width);
  return f == t ? t : f + width;
}
bool multiple_of(TimestampMs t, DurationMs width) { return floor_to(t, width) == t; }

TimestampMs saturating_add(TimestampMs a, DurationMs b) {
  TimestampMs out = 0;
  if (__builtin_add_overflow(a, b, &out)) {
    return b > 0 ? std::numeric_limits<TimestampMs>::max()
                 : std::numeric_limits<TimestampMs>::min();
  }
  return out;
}

bool drops_name(BinaryOp op) { return !is_comparison(op) && !is_set_operator(op); }

// Labels as Prometheus 2.x's labels.String() prints them: {__name__="x", a="b"}.
std::string go_labels(const Labels& labels) {
  std::string out = "{";
  for (const auto& l : labels.items()) {
    if (out.size() > 1) out += ", ";
    out += l.name;
    out.push_back('=');
    append_quoted(out, l.value);
  }
  out.push_back('}');
  return out;
}

bool contains_index(const std::vector<size_t>& indexes, size_t index) {
  return std::find(indexes.begin(), indexes.end(), index) != indexes.end();
}

// Prometheus' vectorElemBinop: the value, and whether a comparison keeps the element.
std::pair<double, bool> apply(BinaryOp op, double l, double r) {
  switch (op) {
    case BinaryOp::kAdd: return {l + r, true};
    case BinaryOp::kSub: return {l - r, true};
    case BinaryOp::kMul: return {l * r, true};
    case BinaryOp::kDiv: return {l / r, true};
    case BinaryOp::kMod: return {std::fmod(l, r), true};
    case BinaryOp::kAtan2: return {std::atan2(l, r), true};
    case BinaryOp::kPow: return {std::pow(l, r), true};
    case BinaryOp::kEq: return {l, l == r};
    case BinaryOp::kNe: return {l, l != r};
    case BinaryOp::kGt: return {l, l > r};
    case BinaryOp::kLt: return {l, l < r};
    case BinaryOp::kGe: return {l, l >= r};
    case BinaryOp::kLe: return {l, l <= r};
    case BinaryOp::kAnd:
    case BinaryOp::kOr:
    case BinaryOp::kUnless: break;  // set operators don't combine values (set_operation)
  }
  return {kNaN, false};
}

// Walks one series' points step by step: present(t) is true (and consumes the point) when the
// series has a value at step time t. Steps must be visited in order.
struct Cursor {
  const std::vector<store::Point>* points;
  size_t next = 0;
  const store::Point* at(TimestampMs t) {
    if (next < points->size() && (*points)[next].timestamp == t) return &(*points)[next++];
    return nullptr;
  }
};

std::vector<Cursor> cursors(const std::vector<Series>& series) {
  std::vector<Cursor> out;
  out.reserve(series.size());
  for (const auto& s : series) out.push_back({&s.points});
  return out;
}

// The join key of one-to-one vector matching: on(names) uses only those labels, ignoring(names)
// (the default, with no names) all labels but those and __name__.
std::string signature(const Labels& labels, bool on, const std::vector<std::string>& names) {
  std::string sig;
  for (const auto& l : labels.items()) {
    const bool listed = contains(names, l.name);
    if (on ? listed : (!listed && l.name != kMetricNameLabel)) {
      sig += l.name;
      sig.push_back('\xff');
      sig += l.value;
      sig.push_back('\xff');
    }
  }
  return sig;
}

// Interns strings to dense ids.
class Interner {
 public:
  size_t id(std::string key) {
    auto [it, inserted] = ids_.try_emplace(std::move(key), ids_.size());
    return it->second;
  }
  size_t size() const { return ids_.size(); }

 private:
  std::unordered_map<std::string, size_t> ids_;
};

// The dense id of each series' matching signature under `n`'s on/ignoring labels.
std::vector<size_t> signature_ids(const Value& v, const BinaryExpr& n, Interner& sigs) {
  std::vector<size_t> ids;
  ids.reserve(v.series.size());
  for (const auto& s : v.series)
    ids.push_back(sigs.id(signature(*s.labels, n.on, n.matching_labels)));
  return ids;
}

// How a range function reads one query's series.
struct ReadPlan {
  DurationMs width = 0;  // 0: raw samples, else kRollup5m or kRollup1h
  bool widened = false;  // windows widened to whole buckets (approximate)
};

ReadPlan plan_read(const store::SampleStore& store, Function f, DurationMs range,
                   TimestampMs first_end, const StepGrid& grid) {
  auto aligned = [&](DurationMs w) {
    return range % w == 0 && multiple_of(first_end, w) && (grid.count == 1 || grid.step % w == 0);
  };
  ReadPlan exact;
  // Functions that depend on individual samples (irate, changes, deriv, ...) read them.
  if (!has_rollup_kernel(f)) return exact;
  // Sketch quantiles don't interpolate like Prometheus; over short ranges (few samples) that
  // shows, so they come from raw samples unless raw is gone.
  if (f != Function::kQuantileOverTime || range >= store::kRollup1h) {
    if (aligned(store::kRollup1h)) {
      exact.width = store::kRollup1h;
    } else if (aligned(store::kRollup5m)) {
      exact.width = store::kRollup5m;
    }
  }
  const TimestampMs raw_horizon = store.raw_horizon();
  if (raw_horizon == std::numeric_limits<TimestampMs>::min()) return exact;  // nothing expires

  const TimestampMs oldest = first_end - range;  // the oldest window is (oldest, first_end]
  const store::RetentionPolicy retention = store.retention();
  const TimestampMs now = saturating_add(raw_horizon, retention.raw);
  auto covered = [&](DurationMs w) {
    if (w == 0) return oldest + 1 >= raw_horizon;
    const DurationMs keep = w == store::kRollup5m ? retention.rollup_5m : retention.rollup_1h;
    return floor_to(oldest, w) >= saturating_add(now, -keep);
  };
  if (covered(exact.width)) return exact;
  for (DurationMs w : {store::kRollup5m, store::kRollup1h}) {
    if (w < exact.width) continue;
    if (covered(w) || w == store::kRollup1h) return {w, !aligned(w)};
  }
  return exact;
}

void count_read(QueryStats& stats, DurationMs width, bool widened) {
  if (width == 0) {
    ++stats.raw_reads;
  } else if (width == store::kRollup5m) {
    ++stats.rollup_5m_reads;
  } else {
    ++stats.rollup_1h_reads;
  }
  if (widened) ++stats.widened_reads;
}

// Range selectors see no stale markers, as in Prometheus: they are the end of a series, never a
// point of it (count_over_time does not count them, rate does not read them as a reset).
void drop_stale_markers(std::vector<store::Point>& points) {
  std::erase_if(points, [](const store::Point& p) { return is_stale_marker(p.value); });
}

bool range_function_keeps_name(Function f) { return f == Function::kLastOverTime; }

uint64_t points_of(const std::vector<Series>& series) {
  uint64_t n = 0;
  for (const auto& s : series) n += s.points.size();
  return n;
}

}  // namespace

Result<Value> Evaluator::eval(const Expr& expr) {
  if (auto st = guard_.check(); !st) return st;
  const uint64_t before = guard_.held();
  auto value = std::visit([&](const auto& node) { return eval_node(node); }, expr.node);
  if (!value) return value;
  // The children's values are gone once this node is computed; its own stay until its parent
  // has computed from them.
  if (auto st = guard_.hold_exactly(before + points_of(value->series)); !st) return st;
  return value;
}

Result<Value> Evaluator::eval_node(const NumberLiteral& n) {
  Value v;
  v.type = ValueType::kScalar;
  v.scalars.assign(grid_.count, n.value);
  return v;
}

Result<Value> Evaluator::eval_node(const StringLiteral& n) {
  Value v;
  v.type = ValueType::kString;
  v.string = n.value;
  return v;
}

Result<Value> Evaluator::eval_node(const ParenExpr& n) { return eval(*n.expr); }

std::optional<TimestampMs> Evaluator::at_time(const AtModifier& at) const {
  switch (at.kind) {
    case AtModifier::Kind::kNone: return std::nullopt;
    case AtModifier::Kind::kTimestamp: return at.time;
    case AtModifier::Kind::kStart: return query_start_;
    case AtModifier::Kind::kEnd: return query_end_;
  }
  return std::nullopt;
}

template <typename F>
Result<Value> Evaluator::at_fixed(TimestampMs t, F&& compute) {
  const StepGrid outer = grid_;
  grid_ = StepGrid{t, 1, 1, false, std::nullopt};
  auto v = compute();
  grid_ = outer;
  if (!v) return v;
  if (v->type == ValueType::kScalar) {
    v->scalars.assign(outer.count, v->scalars.empty() ? kNaN : v->scalars[0]);
  } else if (v->type == ValueType::kVector) {
    if (auto st = guard_.hold(v->series.size() * outer.count); !st) return st;
    for (auto& s : v->series) {
      const double x = s.points.front().value;  // series without points are never kept
      s.points.resize(outer.count);
      for (size_t k = 0; k < outer.count; ++k) s.points[k] = {outer.at(k), x};
    }
  }
  return v;
}

Result<Value> Evaluator::eval_node(const VectorSelector& n) {
  if (auto t = at_time(n.at)) return at_fixed(*t, [&] { return select_vector(n); });
  return select_vector(n);
}

Result<Value> Evaluator::eval_node(const SubqueryExpr& n) {
  // As Prometheus: the operand is evaluated at every multiple of the step after
  // t - offset - range up to t - offset, for t the first and the last evaluation time (the @
  // time if set). Ranges are left-open, as for range selectors (Prometheus 3; 2.x also took a
  // point at exactly t - offset - range).
  Value v;
  v.type = ValueType::kMatrix;
  const DurationMs step = n.step != 0 ? n.step : subquery_step_;
  const std::optional<TimestampMs> fixed = at_time(n.at);
  const TimestampMs first_end = fixed.value_or(grid_.start) - n.offset;
  const TimestampMs last_end = fixed.value_or(grid_.last()) - n.offset;
  const TimestampMs start = floor_to(first_end - n.range, step) + step;
  if (start > last_end) return v;
  const uint64_t count = static_cast<uint64_t>((last_end - start) / step) + 1;
  // The operand holds at least a value per step; bound that before allocating any of it.
  constexpr uint64_t kMaxSteps = uint64_t{1} << 27;
  if (count > kMaxSteps) return Status::resource_exhausted(kTooManySamplesMessage);
  if (auto st = guard_.hold(count); !st) return st;
  guard_.release(count);
  const StepGrid outer = grid_;
  grid_ = StepGrid{start, step, static_cast<size_t>(count), true, std::nullopt};
  auto inner = eval(*n.expr);
  grid_ = outer;
  if (!inner) return inner;
  v.series = std::move(inner->series);
  return v;
}

Result<Value> Evaluator::eval_subquery_function(Function f, const SubqueryExpr& sq,
                                                std::span<const std::vector<double>> params) {
  auto sub = eval_node(sq);
  if (!sub) return sub;
  Value v;
  v.type = ValueType::kVector;
  const std::optional<TimestampMs> fixed = at_time(sq.at);
  std::vector<double> step_params(params.size());
  for (auto& in : sub->series) {
    Series s{range_function_keeps_name(f) ? in.labels : drop_name(in.labels), {}};
    const std::vector<store::Point>& points = in.points;
    size_t lo = 0;
    size_t hi = 0;
    for (size_t k = 0; k < grid_.count; ++k) {
      if (auto st = guard_.tick(); !st) return st;
      const TimestampMs end = fixed.value_or(grid_.at(k)) - sq.offset;
      const RangeWindow win{end - sq.range, end};
      while (hi < points.size() && points[hi].timestamp <= win.end) ++hi;
      while (lo < hi && points[lo].timestamp <= win.start) ++lo;
      if (lo == hi) continue;
      const std::span<const store::Point> window(points.data() + lo, hi - lo);
      for (size_t j = 0; j < params.size(); ++j) step_params[j] = params[j][k];
      if (auto st = check_range_params(f, step_params); !st) return st;
      const TimestampMs at = fixed.value_or(grid_.at(k));
      if (auto value = over_raw(f, window, win, at, step_params, scratch_)) {
        s.points.push_back({grid_.at(k), *value});
      }
    }
    if (!s.points.empty()) v.series.push_back(std::move(s));
  }
  if (auto st = sort_and_check_unique(v.series); !st) return st;
  return v;
}

Result<Value> Evaluator::select_vector(const VectorSelector& n) {
  Value v;
  v.type = ValueType::kVector;
  const DurationMs off = n.offset;
  const TimestampMs first = grid_.start - off;
  const TimestampMs last = grid_.last() - off;
  // The 5m bucket ending at t is exactly the lookback window (t - 5m, t]: its `last` is the
  // answer, and one bucket replaces every raw sample in it.
  const bool from_rollups = grid_.range_query && lookback_ == store::kRollup5m &&
                            grid_.step % store::kRollup5m == 0 &&
                            multiple_of(first, store::kRollup5m);
  for (const auto& ref : store_.select(n.matchers)) {
    if (auto st = guard_.check(); !st) return st;
    Series s{ref.labels, {}};
    uint64_t read = 0;  // samples or buckets held while this series is evaluated
    if (from_rollups) {
      rollups_.clear();
      if (auto st = store_.read_rollups(ref.id, store::kRollup5m, first - store::kRollup5m, last,
                                        rollups_, false);
          !st) {
        return st;
      }
      count_read(stats_, store::kRollup5m, false);
      read = rollups_.size();
      if (auto st = guard_.hold(read); !st) return st;
      for (const auto& b : rollups_) {
        // A bucket ending in a stale marker: the series had ended at this step.
        if ((b.end - first) % grid_.step == 0 && !b.ends_stale) {
          s.points.push_back({b.end + off, b.last});
        }
      }
    } else {
      count_read(stats_, 0, false);
      if (lookback_ < grid_.step) {
        // Steps far apart: read each lookback window rather than everything in between.
        for (size_t k = 0; k < grid_.count; ++k) {
          if (auto st = guard_.tick(); !st) return st;
          const TimestampMs t = grid_.at(k) - off;
          samples_.clear();
          if (auto st = store_.read(ref.id, t - lookback_ + 1, t, samples_); !st) return st;
          if (auto st = guard_.hold(samples_.size()); !st) return st;
          guard_.release(samples_.size());
          // The newest sample a stale marker: the series has no value at t.
          if (!samples_.empty() && !is_stale_marker(samples_.back().value)) {
            s.points.push_back({grid_.at(k), samples_.back().value});
          }
        }
      } else {
        samples_.clear();
        if (auto st = store_.read(ref.id, first - lookback_ + 1, last, samples_); !st) return st;
        read = samples_.size();
        if (auto st = guard_.hold(read); !st) return st;
        // Walk steps and samples together: the latest sample at or before t, within lookback,
        // unless that is a stale marker (the series has ended).
        size_t next = 0;
        for (size_t k = 0; k < grid_.count; ++k) {
          const TimestampMs t = grid_.at(k) - off;
          while (next < samples_.size() && samples_[next].timestamp <= t) ++next;
          if (next > 0 && samples_[next - 1].timestamp > t - lookback_ &&
              !is_stale_marker(samples_[next - 1].value)) {
            s.points.push_back({grid_.at(k), samples_[next - 1].value});
          }
        }
      }
    }
    guard_.release(read);
    if (auto st = guard_.hold(s.points.size()); !st) return st;
    if (!s.points.empty()) v.series.push_back(std::move(s));
  }
  return v;
}

Result<Value> Evaluator::eval_node(const MatrixSelector& n) {
  // Only at the top of an instant query (the type check allows nothing else): raw samples
  // with their own timestamps.
  Value v;
  v.type = ValueType::kMatrix;
  const TimestampMs end = at_time(n.selector.at).value_or(grid_.start) - n.selector.offset;
  for (const auto& ref : store_.select(n.selector.matchers)) {
    if (auto st = guard_.check(); !st) return st;
    Series s{ref.labels, {}};
    if (auto st = store_.read(ref.id, end - n.range + 1, end, s.points); !st) return st;
    drop_stale_markers(s.points);
    if (auto st = guard_.hold(s.points.size()); !st) return st;
    count_read(stats_, 0, false);
    if (!s.points.empty()) v.series.push_back(std::move(s));
  }
  return v;
}

Result<Value> Evaluator::eval_node(const UnaryExpr& n) {
  auto v = eval(*n.operand);
  if (!v || !n.negate) return v;
  if (v->type == ValueType::kScalar) {
    for (double& d : v->scalars) d = -d;
    return v;
  }
  for (auto& s : v->series) {
    s.labels = drop_name(s.labels);
    for (auto& p : s.points) p.value = -p.value;
  }
  if (auto st = sort_and_check_unique(v->series); !st) return st;
  return v;
}

Result<Value> Evaluator::eval_node(const BinaryExpr& n) {
  auto lhs = eval(*n.lhs);
  if (!lhs) return lhs;
  auto rhs = eval(*n.rhs);
  if (!rhs) return rhs;
  const bool l_scalar = lhs->type == ValueType::kScalar;
  const bool r_scalar = rhs->type == ValueType::kScalar;

  if (l_scalar && r_scalar) {
    // Scalar comparisons always carry `bool` (the type check insists): 1 or 0.
    for (size_t k = 0; k < grid_.count; ++k) {
      auto [value, keep] = apply(n.op, lhs->scalars[k], rhs->scalars[k]);
      lhs->scalars[k] = is_comparison(n.op) ? (keep ? 1.0 : 0.0) : value;
    }
    return lhs;
  }
  if (!l_scalar && !r_scalar)
    return vector_vector(n, std::move(lhs).value(), std::move(rhs).value());

  // Vector and scalar: element-wise against the step's scalar.
  const bool swap = l_scalar;
  Value vec = swap ? std::move(rhs).value() : std::move(lhs).value();
  const std::vector<double>& scalars = swap ? lhs->scalars : rhs->scalars;
  const TimestampMs start = grid_.start;
  for (auto& s : vec.series) {
    size_t out = 0;
    for (const auto& p : s.points) {
      const double sv = scalars[static_cast<size_t>((p.timestamp - start) / grid_.step)];
      const double lv = swap ? sv : p.value;
      const double rv = swap ? p.value : sv;
      auto [value, keep] = apply(n.op, lv, rv);
      // A comparison keeps the vector's value, whichever side it is on.
      if (is_comparison(n.op)) value = p.value;
      if (n.return_bool) {
        value = keep ? 1.0 : 0.0;
        keep = true;
      }
      if (keep) s.points[out++] = {p.timestamp, value};
    }
    s.points.resize(out);
    if (drops_name(n.op) || n.return_bool) s.labels = drop_name(s.labels);
  }
  std::erase_if(vec.series, [](const Series& s) { return s.points.empty(); });
  if (auto st = sort_and_merge(vec.series); !st) return st;
  return vec;
}

Result<Value> Evaluator::vector_vector(const BinaryExpr& n, Value lhs, Value rhs) {
  if (is_set_operator(n.op)) return set_operation(n, lhs, rhs);
  // Evaluated step by step as Prometheus' VectorBinop: at each step the "one" side's signatures
  // must be unique; one-to-one, each signature may match one element of the other side;
  // many-to-one (group_left; group_right swaps the sides), the result labels (the "many"
  // element's, with the group labels copied from the "one" element) must be unique per
  // signature.
  const bool swapped = n.card == Cardinality::kOneToMany;
  const bool one_to_one = n.card == Cardinality::kOneToOne;
  const Value& many = swapped ? rhs : lhs;
  const Value& one = swapped ? lhs : rhs;
  Interner sigs;
  const std::vector<size_t> msig = signature_ids(many, n, sigs);
  const std::vector<size_t> osig = signature_ids(one, n, sigs);

  // Prometheus' resultMetric: one-to-one, the labels depend on the "many" element alone;
  // otherwise on the pair, looked up by (many, one) index.
  Value out;
  out.type = ValueType::kVector;
  Interner result_keys;
  std::unordered_map<uint64_t, size_t> pair_index;
  auto result_index = [&](size_t i, size_t j) -> size_t {
    const uint64_t key = one_to_one ? i : (static_cast<uint64_t>(i) << 32) | j;
    if (auto it = pair_index.find(key); it != pair_index.end()) return it->second;
    LabelsPtr labels = many.series[i].labels;
    if (drops_name(n.op)) labels = drop_name(labels);
    if (one_to_one) {
      if (n.on) {
        labels = select_labels(*labels, n.matching_labels, true, false);
      } else if (!n.matching_labels.empty()) {
        labels = select_labels(*labels, n.matching_labels, false, false);
      }
    } else if (!n.include.empty()) {
      // Copied from the "one" side; a label it lacks is removed.
      const Labels& from = *one.series[j].labels;
      std::vector<Label> items;
      for (const auto& l : labels->items()) {
        if (!contains(n.include, l.name)) items.push_back(l);
      }
      for (const auto& l : from.items()) {
        if (contains(n.include, l.name) && !l.value.empty()) items.push_back(l);
      }
      std::sort(items.begin(), items.end(),
                [](const Label& x, const Label& y) { return x.name < y.name; });
      labels = owned(std::move(items));
    }
    if (n.return_bool) labels = drop_name(labels);
    const size_t id = result_keys.id(labels->encode());
    if (id == out.series.size()) out.series.push_back({labels, {}});
    pair_index.emplace(key, id);
    return id;
  };

  struct Slot {
    size_t stamp = kNone;          // step at which `series` was set
    size_t matched_stamp = kNone;  // step at which a "many" element matched it
    size_t series = 0;
    double value = 0;
    std::vector<size_t> results;  // many-to-one: result series made at matched_stamp
  };
  std::vector<Slot> slots(sigs.size());
  auto mc = cursors(many.series);
  auto oc = cursors(one.series);
  std::vector<std::pair<size_t, double>> mnow;
  std::vector<std::pair<size_t, double>> onow;
  for (size_t k = 0; k < grid_.count; ++k) {
    if (auto st = guard_.tick(); !st) return st;
    const TimestampMs t = grid_.at(k);
    mnow.clear();
    onow.clear();
    for (size_t i = 0; i < mc.size(); ++i) {
      if (const auto* p = mc[i].at(t)) mnow.emplace_back(i, p->value);
    }
    for (size_t j = 0; j < oc.size(); ++j) {
      if (const auto* p = oc[j].at(t)) onow.emplace_back(j, p->value);
    }
    if (mnow.empty() || onow.empty()) continue;
    for (const auto& [j, value] : onow) {
      Slot& slot = slots[osig[j]];
      if (slot.stamp == k) {
        const auto& a = *one.series[j].labels;
        const auto& b = *one.series[slot.series].labels;
        const LabelsPtr group = select_labels(a, n.matching_labels, n.on, !n.on);
        return Status::invalid_argument(
            "found duplicate series for the match group " + go_labels(*group) + " on the " +
            (swapped ? "left" : "right") + " hand-side of the operation: [" + go_labels(a) + ", " +
            go_labels(b) +
            "];many-to-many matching not allowed: matching labels must be unique on one side");
      }
      slot.stamp = k;
      slot.series = j;
      slot.value = value;
    }
    for (const auto& [i, mv] : mnow) {
      Slot& slot = slots[msig[i]];
      if (slot.stamp != k) continue;
      auto [value, keep] = swapped ? apply(n.op, slot.value, mv) : apply(n.op, mv, slot.value);
      if (n.return_bool) {
        value = keep ? 1.0 : 0.0;
      } else if (!keep) {
        continue;
      }
      const size_t index = result_index(i, slot.series);
      if (slot.matched_stamp != k) {
        slot.matched_stamp = k;
        slot.results.clear();
      } else if (one_to_one) {
        return Status::invalid_argument(
            "multiple matches for labels: many-to-one matching must be explicit "
            "(group_left/group_right)");
      } else if (contains_index(slot.results, index)) {
        return Status::invalid_argument(
            "multiple matches for labels: grouping labels must ensure unique matches");
      }
      if (!one_to_one) slot.results.push_back(index);
      auto& points = out.series[index].points;
      if (!points.empty() && points.back().timestamp == t) return same_labelset_error();
      points.push_back({t, value});
    }
  }
  std::erase_if(out.series, [](const Series& s) { return s.points.empty(); });
  sort_series(out.series);
  return out;
}

Result<Value> Evaluator::set_operation(const BinaryExpr& n, const Value& lhs, const Value& rhs) {
  // Step by step as Prometheus' VectorAnd / VectorOr / VectorUnless: `and` keeps the left
  // elements whose signature the right side has at that step, `unless` those it has not, `or`
  // every left element and the right ones whose signature the left side has not. Labels are
  // kept whole (__name__ too); a series of either side with the same labels is one result.
  Interner sigs;
  const std::vector<size_t> lsig = signature_ids(lhs, n, sigs);
  const std::vector<size_t> rsig = signature_ids(rhs, n, sigs);
  Value out;
  out.type = ValueType::kVector;
  Interner keys;
  auto index_of = [&](const Series& s) {
    const size_t id = keys.id(s.labels->encode());
    if (id == out.series.size()) out.series.push_back({s.labels, {}});
    return id;
  };
  std::vector<size_t> lout;
  std::vector<size_t> rout;
  for (const auto& s : lhs.series) lout.push_back(index_of(s));
  if (n.op == BinaryOp::kOr) {
    for (const auto& s : rhs.series) rout.push_back(index_of(s));
  }
  std::vector<size_t> seen(sigs.size(), kNone);  // step at which a signature was seen
  auto lc = cursors(lhs.series);
  auto rc = cursors(rhs.series);
  auto add = [&](size_t index, TimestampMs t, double value) -> Status {
    auto& points = out.series[index].points;
    if (!points.empty() && points.back().timestamp == t) return same_labelset_error();
    points.push_back({t, value});
    return Status::ok();
  };
  for (size_t k = 0; k < grid_.count; ++k) {
    if (auto st = guard_.tick(); !st) return st;
    const TimestampMs t = grid_.at(k);
    if (n.op == BinaryOp::kOr) {
      for (size_t i = 0; i < lc.size(); ++i) {
        const auto* p = lc[i].at(t);
        if (p == nullptr) continue;
        seen[lsig[i]] = k;
        if (auto st = add(lout[i], t, p->value); !st) return st;
      }
      for (size_t j = 0; j < rc.size(); ++j) {
        const auto* p = rc[j].at(t);
        if (p == nullptr || seen[rsig[j]] == k) continue;
        if (auto st = add(rout[j], t, p->value); !st) return st;
      }
      continue;
    }
    for (size_t j = 0; j < rc.size(); ++j) {
      if (rc[j].at(t) != nullptr) seen[rsig[j]] = k;
    }
    const bool want = n.op == BinaryOp::kAnd;
    for (size_t i = 0; i < lc.size(); ++i) {
      const auto* p = lc[i].at(t);
      if (p == nullptr || (seen[lsig[i]] == k) != want) continue;
      if (auto st = add(lout[i], t, p->value); !st) return st;
    }
  }
  std::erase_if(out.series, [](const Series& s) { return s.points.empty(); });
  sort_series(out.series);
  return out;
}

Result<Value> Evaluator::eval_node(const Call& n) {
  if (!is_range_function(n.function)) return eval_function(n);
  // The scalar arguments, one value per step each, in call order; the range vector is the
  // argument of matrix type (the type check guarantees a range selector, maybe in parentheses).
  std::vector<std::vector<double>> params;
  const Expr* matrix = nullptr;
  for (const auto& a : n.args) {
    if (a->type == ValueType::kMatrix) {
      matrix = a.get();
      continue;
    }
    auto p = eval(*a);
    if (!p) return p;
    params.push_back(std::move(p->scalars));
  }
  // A range selector or a subquery (the type check guarantees one), possibly in parentheses.
  while (const auto* paren = std::get_if<ParenExpr>(&matrix->node)) matrix = paren->expr.get();
  auto v = std::holds_alternative<SubqueryExpr>(matrix->node)
               ? eval_subquery_function(n.function, std::get<SubqueryExpr>(matrix->node), params)
               : eval_range_function(n.function, std::get<MatrixSelector>(matrix->node), params);
  if (!v || n.function != Function::kAbsentOverTime) return v;
  return absent_steps(*v, *matrix);
}

Result<Value> Evaluator::eval_range_function(Function f, const MatrixSelector& ms,
                                             std::span<const std::vector<double>> params) {
  Value v;
  v.type = ValueType::kVector;
  const DurationMs off = ms.selector.offset;
  const DurationMs range = ms.range;
  // With @ every step's window is the one at the @ time.
  const std::optional<TimestampMs> fixed = at_time(ms.selector.at);
  auto end_at = [&](size_t k) { return fixed.value_or(grid_.at(k)) - off; };
  const TimestampMs first_end = end_at(0);
  const StepGrid plan_grid =
      fixed ? StepGrid{*fixed, 1, 1, grid_.range_query, std::nullopt} : grid_;
  const ReadPlan plan = plan_read(store_, f, range, first_end, plan_grid);
  const DurationMs w = plan.width;
  // The window at step k: (end - range, end], widened outward to whole buckets if planned so.
  auto window = [&](size_t k) {
    RangeWindow win{end_at(k) - range, end_at(k)};
    if (plan.widened) win = {floor_to(win.start, w), ceil_to(win.end, w)};
    return win;
  };
  const RangeWindow span{window(0).start, window(grid_.count - 1).end};
  // The scalar arguments at step k, checked as Prometheus does where a window has samples.
  std::vector<double> step_params(params.size());
  auto call_kernel = [&](size_t k, std::span<const store::Point> in,
                         RangeWindow win) -> Result<std::optional<double>> {
    for (size_t j = 0; j < params.size(); ++j) step_params[j] = params[j][k];
    if (auto st = check_range_params(f, step_params); !st) return st;
    return over_raw(f, in, win, fixed.value_or(grid_.at(k)), step_params, scratch_);
  };

  for (const auto& ref : store_.select(ms.selector.matchers)) {
    if (auto st = guard_.check(); !st) return st;
    Series s{range_function_keeps_name(f) ? ref.labels : drop_name(ref.labels), {}};
    count_read(stats_, w, plan.widened);
    uint64_t read = 0;  // samples or buckets held while this series is evaluated
    if (w == 0 && range < grid_.step && !fixed) {
      // Windows don't overlap: read each one rather than everything in between.
      for (size_t k = 0; k < grid_.count; ++k) {
        if (auto st = guard_.tick(); !st) return st;
        const RangeWindow win = window(k);
        samples_.clear();
        if (auto st = store_.read(ref.id, win.start + 1, win.end, samples_); !st) return st;
        if (auto st = guard_.hold(samples_.size()); !st) return st;
        guard_.release(samples_.size());
        drop_stale_markers(samples_);
        if (samples_.empty()) continue;
        auto value = call_kernel(k, samples_, win);
        if (!value) return value.status();
        if (*value) s.points.push_back({grid_.at(k), **value});
      }
    } else if (w == 0) {
      samples_.clear();
      if (auto st = store_.read(ref.id, span.start + 1, span.end, samples_); !st) return st;
      drop_stale_markers(samples_);
      read = samples_.size();
      if (auto st = guard_.hold(read); !st) return st;
      size_t lo = 0;
      size_t hi = 0;
      for (size_t k = 0; k < grid_.count; ++k) {
        if (auto st = guard_.tick(); !st) return st;
        const RangeWindow win = window(k);
        while (hi < samples_.size() && samples_[hi].timestamp <= win.end) ++hi;
        while (lo < hi && samples_[lo].timestamp <= win.start) ++lo;
        if (lo == hi) continue;
        const std::span<const store::Point> in(samples_.data() + lo, hi - lo);
        auto value = call_kernel(k, in, win);
        if (!value) return value.status();
        if (*value) s.points.push_back({grid_.at(k), **value});
      }
    } else {
      rollups_.clear();
      const bool sketches = f == Function::kQuantileOverTime;  // only quantiles read them
      if (auto st = store_.read_rollups(ref.id, w, span.start, span.end, rollups_, sketches); !st) {
        return st;
      }
      read = rollups_.size();
      if (auto st = guard_.hold(read); !st) return st;
      size_t lo = 0;
      size_t hi = 0;
      for (size_t k = 0; k < grid_.count; ++k) {
        if (auto st = guard_.tick(); !st) return st;
        const RangeWindow win = window(k);
        while (hi < rollups_.size() && rollups_[hi].end <= win.end) ++hi;
        while (lo < hi && rollups_[lo].end <= win.start) ++lo;
        if (lo == hi) continue;
        const std::span<const store::Rollup> in(rollups_.data() + lo, hi - lo);
        if (!plan.widened && rollups_differ_from_raw(f, in)) {
          // This window from its raw samples instead (they are still kept: not widened).
          samples_.clear();
          if (auto st = store_.read(ref.id, win.start + 1, win.end, samples_); !st) return st;
          drop_stale_markers(samples_);
          if (samples_.empty()) continue;
          auto value = call_kernel(k, samples_, win);
          if (!value) return value.status();
          if (*value) s.points.push_back({grid_.at(k), **value});
          continue;
        }
        if (auto value = over_rollups(f, in, win, params.empty() ? 0 : params[0][k])) {
          s.points.push_back({grid_.at(k), *value});
        }
      }
    }
    guard_.release(read);
    if (auto st = guard_.hold(s.points.size()); !st) return st;
    if (!s.points.empty()) v.series.push_back(std::move(s));
  }
  if (auto st = sort_and_check_unique(v.series); !st) return st;
  return v;
}

Result<Value> Evaluator::eval_node(const AggregateExpr& n) {
  // Prometheus evaluates the parameter first.
  std::optional<Value> param;
  if (n.param) {
    auto p = eval(*n.param);
    if (!p) return p;
    param = std::move(p).value();
  }
  auto in = eval(*n.expr);
  if (!in) return in;
  return aggregate(n, std::move(in).value(), param ? &*param : nullptr);
}

}  // namespace kpid::query::detail
