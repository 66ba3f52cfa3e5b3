#pragma once
// Parsing helpers of the PromQL parser tests, REQUIREing the outcome they expect.

#include <catch2/catch.hpp>
#include <string>
#include <variant>

#include "kpid/query/promql.h"

namespace kpid::testing {

// The canonical (fully parenthesised) text of a query that must parse.
inline std::string canon(const std::string& q) {
  auto r = query::parse_promql(q);
  INFO("query " << q << ": " << (r ? std::string("ok") : r.status().message()));
  REQUIRE(r.is_ok());
  return query::format_expr(**r);
}

inline query::ValueType type_of(const std::string& q) {
  auto r = query::parse_promql(q);
  INFO("query " << q << ": " << (r ? std::string("ok") : r.status().message()));
  REQUIRE(r.is_ok());
  return (*r)->type;
}

// The value of a query that must be a number literal.
inline double number(const std::string& q) {
  auto r = query::parse_promql(q);
  INFO("query " << q << ": " << (r ? std::string("ok") : r.status().message()));
  REQUIRE(r.is_ok());
  const auto* n = std::get_if<query::NumberLiteral>(&(*r)->node);
  REQUIRE(n != nullptr);
  return n->value;
}

// The message of a query that must fail to parse (invalid_argument).
inline std::string error(const std::string& q) {
  auto r = query::parse_promql(q);
  INFO("query " << q);
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().code() == StatusCode::kInvalidArgument);
  return r.status().message();
}

}  // namespace kpid::testing
