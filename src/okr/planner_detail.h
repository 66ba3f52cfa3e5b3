#pragma once
// What the planner's two halves (planner.cpp for KPIs, slo_okr.cpp for SLOs) share.

#include <array>
#include <string>
#include <string_view>

#include <boost/json/object.hpp>

#include "kpid/okr/okr.h"

namespace kpid::okr::detail {

inline constexpr std::string_view kPrefix = "okr/";
inline constexpr std::string_view kSeqKey = "meta/okr_seq";

// The variables of [kpi.okr] templates (guardrails use them for SLOs too).
inline constexpr std::array<std::string_view, 9> kVariables = {
    "kpi", "kpi.name", "owner", "unit", "start", "target", "verb", "side", "threshold"};

// Templates leave double spaces where a variable is empty (no unit).
std::string tidy(std::string text);

// An OKR as the API and notifications show it: with its url, without the id counter.
boost::json::object okr_json(const Okr& okr, const std::string& url);

}  // namespace kpid::okr::detail
