#include "kpid/kpi/definition.h"

#include <map>
#include <sstream>

#include "kpid/query/selector.h"

namespace kpid::kpi {

namespace {

std::string number(double v) {
  std::ostringstream out;
  out.precision(17);
  out << v;
  return out.str();
}

std::optional<BaselineMethod> parse_method(std::string_view text) {
  for (BaselineMethod m : {BaselineMethod::kQuantile, BaselineMethod::kStddev,
                           BaselineMethod::kEwma, BaselineMethod::kSeasonal}) {
    if (baseline_method_name(m) == text) return m;
  }
  return std::nullopt;
}

config::ConfigError error_at(const SourcePos& pos, std::string key, std::string message) {
  return {pos.file, pos.line, pos.column, std::move(key), std::move(message)};
}

// Parses a term's selector; the error points at the selector's position in the file.
bool compile_term(const kpi::TermOptions& c, const std::string& key, Term& term,
                  std::vector<config::ConfigError>& errors) {
  auto matchers = query::parse_selector(c.selector);
  if (!matchers) {
    errors.push_back(error_at(c.selector_pos, key + ".selector",
                              "invalid selector: " + matchers.status().message()));
    return false;
  }
  term.selector = c.selector;
  term.matchers = std::move(matchers).value();
  term.over_time = c.over_time;
  term.quantile = c.quantile;
  term.window = c.window;
  term.across = c.across;
  // The compiled expression must parse: it is what the evaluator runs.
  if (auto parsed = query::parse_promql(term.promql(term.window)); !parsed) {
    errors.push_back(error_at(c.selector_pos, key + ".selector",
                              "cannot be evaluated: " + parsed.status().message()));
    return false;
  }
  return true;
}

// How many series an expression can yield, from its shape alone; ordered from fewest.
enum class SeriesCount {
  kScalar,
  kOneUnlabeled,  // at most one series, without labels (`sum(x)`, `vector(1)`)
  kOne,           // at most one series
  kMany,
};

bool at_most_one(SeriesCount c) { return c != SeriesCount::kMany; }

// At most one labelled series when `c` is at most one, else many: for operations that keep
// the series count but may add labels.
SeriesCount labelled(SeriesCount c) { return at_most_one(c) ? SeriesCount::kOne : c; }

SeriesCount series_count(const query::Expr& expr);

// An aggregation's grouping is exactly `by (le)` or `by ()` (possibly under functions, unary
// minus and arithmetic with scalars): histogram_quantile over it yields one series.
bool grouped_by_le_only(const query::Expr& expr) {
  using namespace query;
  if (const auto* a = std::get_if<AggregateExpr>(&expr.node)) {
    // Only aggregations that make one series per group (not topk, count_values...).
    const std::string_view op = aggregate_op_name(a->op);
    if (op == "topk" || op == "bottomk" || op == "limitk" || op == "limit_ratio" ||
        op == "count_values") {
      return false;
    }
    if (a->without) return false;
    for (const auto& g : a->grouping) {
      if (g != "le") return false;
    }
    return true;
  }
  if (const auto* p = std::get_if<ParenExpr>(&expr.node)) return grouped_by_le_only(*p->expr);
  if (const auto* u = std::get_if<UnaryExpr>(&expr.node)) return grouped_by_le_only(*u->operand);
  if (const auto* b = std::get_if<BinaryExpr>(&expr.node)) {
    if (b->lhs->type == ValueType::kScalar) return grouped_by_le_only(*b->rhs);
    if (b->rhs->type == ValueType::kScalar) return grouped_by_le_only(*b->lhs);
    return false;
  }
  if (const auto* c = std::get_if<Call>(&expr.node)) {
    for (const auto& arg : c->args) {
      if (arg->type == ValueType::kVector) return grouped_by_le_only(*arg);
    }
  }
  return false;
}

SeriesCount of_aggregate(const query::AggregateExpr& a) {
  const std::string_view op = query::aggregate_op_name(a.op);
  const SeriesCount inner = series_count(*a.expr);
  if (at_most_one(inner)) return SeriesCount::kOne;
  // Several series in: one out only when there is one group and the operation makes one.
  const bool one_group = !a.without && a.grouping.empty();
  if (!one_group) return SeriesCount::kMany;
  if (op == "count_values" || op == "limit_ratio") return SeriesCount::kMany;
  if (op == "topk" || op == "bottomk" || op == "limitk") {
    const auto* k = a.param ? std::get_if<query::NumberLiteral>(&a.param->node) : nullptr;
    return k && k->value < 2 ? SeriesCount::kOne : SeriesCount::kMany;
  }
  return SeriesCount::kOneUnlabeled;
}

SeriesCount of_call(const query::Call& c, const query::Expr& expr) {
  const std::string_view name = query::function_name(c.function);
  if (expr.type == query::ValueType::kScalar) return SeriesCount::kScalar;
  if (name == "vector") return SeriesCount::kOneUnlabeled;
  if (name == "absent" || name == "absent_over_time") return SeriesCount::kOne;
  if (name == "histogram_quantile") {
    const query::Expr& buckets = *c.args.back();
    if (grouped_by_le_only(buckets)) return SeriesCount::kOneUnlabeled;
    return labelled(series_count(buckets));
  }
  // Otherwise one output series per input series of its vector (or range) argument.
  for (const auto& arg : c.args) {
    if (arg->type == query::ValueType::kVector || arg->type == query::ValueType::kMatrix) {
      const SeriesCount in = series_count(*arg);
      return name == "label_replace" || name == "label_join" ? labelled(in) : in;
    }
  }
  return SeriesCount::kOneUnlabeled;  // time-based functions with no argument: vector(time())
}

SeriesCount of_binary(const query::BinaryExpr& b) {
  const SeriesCount l = series_count(*b.lhs);
  const SeriesCount r = series_count(*b.rhs);
  if (l == SeriesCount::kScalar) return r;
  if (r == SeriesCount::kScalar) return l;
  switch (b.op) {
    case query::BinaryOp::kAnd:
    case query::BinaryOp::kUnless: return l;  // a subset of the left side
    case query::BinaryOp::kOr:
      // The right side's series join only where the left has none with their labels.
      return l == SeriesCount::kOneUnlabeled && r == SeriesCount::kOneUnlabeled
                 ? SeriesCount::kOneUnlabeled
                 : SeriesCount::kMany;
    default: break;
  }
  if (b.card == query::Cardinality::kManyToOne) return labelled(l);
  if (b.card == query::Cardinality::kOneToMany) return labelled(r);
  // One-to-one: each result pairs one series of each side, labelled like the left one.
  if (l == SeriesCount::kOneUnlabeled) return l;
  return at_most_one(l) || at_most_one(r) ? SeriesCount::kOne : SeriesCount::kMany;
}

SeriesCount series_count(const query::Expr& expr) {
  using namespace query;
  if (expr.type == ValueType::kScalar) return SeriesCount::kScalar;
  if (const auto* p = std::get_if<ParenExpr>(&expr.node)) return series_count(*p->expr);
  if (const auto* u = std::get_if<UnaryExpr>(&expr.node)) return series_count(*u->operand);
  if (const auto* b = std::get_if<BinaryExpr>(&expr.node)) return of_binary(*b);
  if (const auto* c = std::get_if<Call>(&expr.node)) return of_call(*c, expr);
  if (const auto* a = std::get_if<AggregateExpr>(&expr.node)) return of_aggregate(*a);
  if (const auto* s = std::get_if<SubqueryExpr>(&expr.node)) return series_count(*s->expr);
  return SeriesCount::kMany;  // selectors
}

// Calls `f` on every node of `expr`, parents first.
template <typename F>
void walk(const query::Expr& expr, F&& f) {
  using namespace query;
  f(expr);
  std::visit(
      [&](const auto& node) {
        using T = std::decay_t<decltype(node)>;
        if constexpr (std::is_same_v<T, UnaryExpr>) {
          walk(*node.operand, f);
        } else if constexpr (std::is_same_v<T, BinaryExpr>) {
          walk(*node.lhs, f);
          walk(*node.rhs, f);
        } else if constexpr (std::is_same_v<T, Call>) {
          for (const auto& arg : node.args) walk(*arg, f);
        } else if constexpr (std::is_same_v<T, AggregateExpr>) {
          if (node.param) walk(*node.param, f);
          walk(*node.expr, f);
        } else if constexpr (std::is_same_v<T, ParenExpr> || std::is_same_v<T, SubqueryExpr>) {
          walk(*node.expr, f);
        }
      },
      expr.node);
}

// [kpi.value] expr: it must parse and be able to yield one number.
bool compile_expr(const kpi::ValueOptions& c, const std::string& key, Definition& d,
                  std::vector<config::ConfigError>& errors) {
  auto parsed = query::parse_promql(c.expr);
  if (!parsed) {
    errors.push_back(error_at(c.expr_pos, key, "invalid PromQL: " + parsed.status().message()));
    return false;
  }
  if (std::string problem = value_expr_problem(**parsed); !problem.empty()) {
    errors.push_back(error_at(c.expr_pos, key, problem));
    return false;
  }
  d.expr = c.expr;
  d.selectors = expr_selectors(**parsed);
  const DurationMs longest = expr_longest_range(**parsed);
  d.expr_window = longest > 0 ? longest : 300'000;
  return true;
}

}  // namespace

std::string value_expr_problem(const query::Expr& expr) {
  if (expr.type != query::ValueType::kVector && expr.type != query::ValueType::kScalar) {
    return std::string("must be an instant vector or a scalar, got ") +
           query::documented_type(expr.type);
  }
  if (expr_selectors(expr).empty()) {
    return "reads no series: a KPI's value must come from data";
  }
  if (!at_most_one(series_count(expr))) {
    return "can yield several series; a KPI's value is one number: aggregate them, e.g. "
           "sum(...), max(...) or a by (le) aggregation under histogram_quantile";
  }
  return {};
}

std::vector<std::vector<LabelMatcher>> expr_selectors(const query::Expr& expr) {
  std::vector<std::vector<LabelMatcher>> out;
  walk(expr, [&](const query::Expr& e) {
    if (const auto* v = std::get_if<query::VectorSelector>(&e.node)) out.push_back(v->matchers);
    if (const auto* m = std::get_if<query::MatrixSelector>(&e.node)) {
      out.push_back(m->selector.matchers);
    }
  });
  return out;
}

DurationMs expr_longest_range(const query::Expr& expr) {
  DurationMs longest = 0;
  walk(expr, [&](const query::Expr& e) {
    if (const auto* m = std::get_if<query::MatrixSelector>(&e.node)) {
      longest = std::max(longest, m->range);
    }
    if (const auto* s = std::get_if<query::SubqueryExpr>(&e.node)) {
      longest = std::max(longest, s->range);
    }
  });
  return longest;
}

std::string_view baseline_method_name(BaselineMethod m) {
  switch (m) {
    case BaselineMethod::kQuantile: return "quantile";
    case BaselineMethod::kStddev: return "stddev";
    case BaselineMethod::kEwma: return "ewma";
    case BaselineMethod::kSeasonal: return "seasonal";
  }
  return "?";
}

std::string Term::promql(DurationMs range) const {
  const std::string matrix = selector + "[" + format_duration(range) + "]";
  std::string inner;
  if (over_time == "rate" || over_time == "increase") {
    inner = over_time + "(" + matrix + ")";
  } else if (over_time == "quantile") {
    inner = "quantile_over_time(" + number(quantile) + ", " + matrix + ")";
  } else {
    inner = over_time + "_over_time(" + matrix + ")";
  }
  return across + "(" + inner + ")";
}

DurationMs Definition::window() const {
  if (!expr.empty()) return expr_window;
  return denominator ? std::max(numerator.window, denominator->window) : numerator.window;
}

std::string Definition::promql() const {
  if (!expr.empty()) return expr;
  if (!denominator) return numerator.promql(numerator.window);
  std::string out = "(" + numerator.promql(numerator.window) + ") / (" +
                    denominator->promql(denominator->window) + ")";
  if (scale != 1) out += " * " + number(scale);
  return out;
}

bool Definition::same_value(const Definition& o) const {
  return promql() == o.promql() && datasource == o.datasource;
}

bool operator==(const Band& a, const Band& b) {
  return a.target == b.target && a.warn == b.warn && a.crit == b.crit && a.warn_low == b.warn_low &&
         a.crit_low == b.crit_low && a.warn_high == b.warn_high && a.crit_high == b.crit_high;
}

CompileResult compile(const std::vector<kpi::KpiOptions>& kpis) {
  CompileResult result;
  for (const auto& c : kpis) {
    const size_t errors_before = result.errors.size();
    const std::string key = "kpi." + c.id;
    Definition d;
    d.id = c.id;
    d.name = c.name;
    d.description = c.description;
    d.owner = c.owner;
    d.unit = c.unit;
    d.review = c.review;
    auto direction = parse_direction(c.direction);
    if (!direction) {
      result.errors.push_back(error_at(c.pos, key + ".direction", "unknown direction"));
      continue;
    }
    d.direction = *direction;
    if (!c.value.expr.empty()) {
      compile_expr(c.value, key + ".value.expr", d, result.errors);
    } else if (c.value.ratio) {
      compile_term(c.value.term, key + ".value.numerator", d.numerator, result.errors);
      d.denominator.emplace();
      compile_term(c.value.denominator, key + ".value.denominator", *d.denominator, result.errors);
      d.scale = c.value.scale;
      d.selectors = {d.numerator.matchers, d.denominator->matchers};
    } else {
      compile_term(c.value.term, key + ".value", d.numerator, result.errors);
      d.selectors = {d.numerator.matchers};
    }
    if (c.interval > 0) d.interval = c.interval;
    d.datasource = c.datasource;
    if (c.band) {
      Band b;
      b.target = c.band->target;
      b.warn = c.band->warn;
      b.crit = c.band->crit;
      b.warn_low = c.band->warn_low;
      b.crit_low = c.band->crit_low;
      b.warn_high = c.band->warn_high;
      b.crit_high = c.band->crit_high;
      if (std::string problem = check_band(d.direction, b); !problem.empty()) {
        result.errors.push_back(error_at(c.band->pos, key + ".band", problem));
      }
      d.band = b;
    }
    if (c.baseline) {
      BaselineSpec s;
      auto method = parse_method(c.baseline->method);
      if (!method) {
        result.errors.push_back(error_at(c.pos, key + ".baseline.method", "unknown method"));
      } else {
        s.method = *method;
      }
      s.window = c.baseline->window;
      s.quantile_low = c.baseline->quantile_low;
      s.quantile_high = c.baseline->quantile_high;
      s.k = c.baseline->k;
      s.alpha = c.baseline->alpha;
      s.min_history = c.baseline->min_history;
      s.refresh = c.baseline->refresh;
      d.baseline = s;
    }
    d.stale_after = c.stale_after > 0 ? c.stale_after : d.window();
    if (result.errors.size() == errors_before) result.kpis.push_back(std::move(d));
  }
  return result;
}

std::vector<config::ConfigError> lint(const std::vector<kpi::KpiOptions>& kpis,
                                      size_t max_per_owner) {
  std::vector<config::ConfigError> warnings;
  std::map<std::string, std::vector<const kpi::KpiOptions*>> by_owner;
  for (const auto& c : kpis) {
    const std::string key = "kpi." + c.id;
    if (c.owner.empty()) {
      warnings.push_back(
          error_at(c.pos, key + ".owner", "no owner: a KPI nobody owns is one nobody acts on"));
    } else {
      by_owner[c.owner].push_back(&c);
    }
    if (!c.band) {
      warnings.push_back(error_at(c.pos, key + ".band",
                                  "no band: without thresholds it can only be anomalous, never "
                                  "warn or crit"));
    }
  }
  for (const auto& [owner, owned] : by_owner) {
    if (owned.size() <= max_per_owner) continue;
    const auto* first_over = owned[max_per_owner];
    warnings.push_back(error_at(first_over->pos, "kpi." + first_over->id + ".owner",
                                "owner \"" + owner + "\" has " + std::to_string(owned.size()) +
                                    " KPIs; more than " + std::to_string(max_per_owner) +
                                    " per owner is more than one team watches"));
  }
  return warnings;
}

}  // namespace kpid::kpi
