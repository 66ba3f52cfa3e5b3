// PromQL's type check after a successful parse, with Prometheus' messages (promql/parser/
// parse.go checkAST).
#include <algorithm>
#include <string>
#include <variant>

#include "kpid/query/promql.h"
#include "promql_lexer.h"

namespace kpid::query::detail {

namespace {

class TypeChecker {
 public:
  explicit TypeChecker(const Lexer& lexer) : lexer_(lexer) {}

  Status expect_type(Expr& e, ValueType want, const std::string& context) {
    if (auto st = check(e); !st) return st;
    if (e.type != want) {
      return lexer_.fail(e.position, std::string("expected type ") + documented_type(want) +
                                         " in " + context + ", got " + documented_type(e.type));
    }
    return Status::ok();
  }

  Status check(Expr& e) {
    return std::visit([&](auto& n) { return check_node(e, n); }, e.node);
  }

  Status check_node(Expr& e, NumberLiteral&) {
    e.type = ValueType::kScalar;
    return Status::ok();
  }
  Status check_node(Expr& e, StringLiteral&) {
    e.type = ValueType::kString;
    return Status::ok();
  }
  Status check_node(Expr& e, VectorSelector&) {
    e.type = ValueType::kVector;
    return Status::ok();
  }
  Status check_node(Expr& e, MatrixSelector&) {
    e.type = ValueType::kMatrix;
    return Status::ok();
  }
  Status check_node(Expr& e, ParenExpr& n) {
    if (auto st = check(*n.expr); !st) return st;
    e.type = n.expr->type;
    return Status::ok();
  }
  Status check_node(Expr& e, UnaryExpr& n) {
    if (auto st = check(*n.operand); !st) return st;
    if (n.operand->type != ValueType::kScalar && n.operand->type != ValueType::kVector) {
      return lexer_.fail(e.position,
                         std::string("unary expression only allowed on expressions of type "
                                     "scalar or instant vector, got \"") +
                             documented_type(n.operand->type) + "\"");
    }
    e.type = n.operand->type;
    return Status::ok();
  }
  Status check_node(Expr& e, BinaryExpr& n) {
    if (auto st = check(*n.lhs); !st) return st;
    if (auto st = check(*n.rhs); !st) return st;
    const ValueType lt = n.lhs->type;
    const ValueType rt = n.rhs->type;
    const size_t op_pos = n.op_position;
    if (n.return_bool && !is_comparison(n.op)) {
      return lexer_.fail(op_pos, "bool modifier can only be used on comparison operators");
    }
    if (is_comparison(n.op) && !n.return_bool && lt == ValueType::kScalar &&
        rt == ValueType::kScalar) {
      return lexer_.fail(op_pos, "comparisons between scalars must use BOOL modifier");
    }
    if (n.on) {
      for (const auto& l : n.matching_labels) {
        if (std::find(n.include.begin(), n.include.end(), l) != n.include.end()) {
          return lexer_.fail(
              op_pos, "label " + quote(l) + " must not occur in ON and GROUP clause at once");
        }
      }
    }
    auto operand_ok = [](ValueType t) {
      return t == ValueType::kScalar || t == ValueType::kVector;
    };
    if (!operand_ok(lt)) {
      return lexer_.fail(n.lhs->position,
                         "binary expression must contain only scalar and instant vector types");
    }
    if (!operand_ok(rt)) {
      return lexer_.fail(n.rhs->position,
                         "binary expression must contain only scalar and instant vector types");
    }
    if (lt != ValueType::kVector || rt != ValueType::kVector) {
      if (!n.matching_labels.empty()) {
        return lexer_.fail(e.position, "vector matching only allowed between instant vectors");
      }
      // As Prometheus drops the matching: group_left/group_right mean nothing with a scalar.
      n.card = is_set_operator(n.op) ? Cardinality::kManyToMany : Cardinality::kOneToOne;
      n.include.clear();
    } else if (is_set_operator(n.op) && n.card != Cardinality::kManyToMany) {
      return lexer_.fail(e.position, std::string("no grouping allowed for \"") +
                                         binary_op_text(n.op) + "\" operation");
    }
    if ((lt == ValueType::kScalar || rt == ValueType::kScalar) && is_set_operator(n.op)) {
      return lexer_.fail(e.position, std::string("set operator \"") + binary_op_text(n.op) +
                                         "\" not allowed in binary scalar expression");
    }
    e.type = lt == ValueType::kScalar && rt == ValueType::kScalar ? ValueType::kScalar
                                                                  : ValueType::kVector;
    return Status::ok();
  }
  Status check_node(Expr& e, Call& n) {
    const FunctionInfo& fn = function_info(n.function);
    const size_t declared = fn.args.size();
    const size_t given = n.args.size();
    if (fn.variadic == 0) {
      if (given != declared) {
        return lexer_.fail(e.position, "expected " + std::to_string(declared) +
                                           " argument(s) in call to \"" + fn.name + "\", got " +
                                           std::to_string(given));
      }
    } else if (given < declared - 1) {
      return lexer_.fail(e.position, "expected at least " + std::to_string(declared - 1) +
                                         " argument(s) in call to \"" + fn.name + "\", got " +
                                         std::to_string(given));
    } else if (const size_t most = declared - 1 + static_cast<size_t>(fn.variadic);
               fn.variadic > 0 && given > most) {
      return lexer_.fail(e.position, "expected at most " + std::to_string(most) +
                                         " argument(s) in call to \"" + fn.name + "\", got " +
                                         std::to_string(given));
    }
    for (size_t i = 0; i < given; ++i) {
      // Arguments past the declared ones repeat the last type (variadic functions).
      const ValueType want = fn.args[std::min(i, declared - 1)];
      if (auto st =
              expect_type(*n.args[i], want, std::string("call to function \"") + fn.name + "\"");
          !st) {
        return st;
      }
    }
    e.type = fn.result;
    return Status::ok();
  }
  Status check_node(Expr& e, SubqueryExpr& n) {
    if (auto st = check(*n.expr); !st) return st;
    if (n.expr->type != ValueType::kVector) {
      return lexer_.fail(e.position,
                         std::string("subquery is only allowed on instant vector, got ") +
                             result_type_name(n.expr->type) + " instead");
    }
    e.type = ValueType::kMatrix;
    return Status::ok();
  }
  Status check_node(Expr& e, AggregateExpr& n) {
    if (auto st = expect_type(*n.expr, ValueType::kVector, "aggregation expression"); !st) {
      return st;
    }
    if (n.param) {
      const ValueType want =
          n.op == AggregateOp::kCountValues ? ValueType::kString : ValueType::kScalar;
      if (auto st = expect_type(*n.param, want, "aggregation parameter"); !st) return st;
    }
    for (const auto& l : n.grouping) {
      if (l.find(':') != std::string::npos) {
        return lexer_.fail(e.position, "invalid label name for grouping: " + quote(l));
      }
    }
    e.type = ValueType::kVector;
    return Status::ok();
  }

 private:
  const Lexer& lexer_;
};

}  // namespace

Status check_types(Expr& e, const Lexer& lexer) { return TypeChecker(lexer).check(e); }

}  // namespace kpid::query::detail
