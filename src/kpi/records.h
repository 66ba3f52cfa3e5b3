#pragma once
// The evaluator's records in the state store: KPI status changes, baseline snapshots and band
// changes. Internal to the kpi module.
//
// Keys: "kpi/<id>/<kind>/" + big-endian time (+ sequence), so a prefix scan is in time order.
// Values: space-separated numbers in shortest round-trip form ("nan" for none).

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kpid/core/time.h"
#include "kpid/kpi/band.h"
#include "kpid/kpi/definition.h"

namespace kpid::kpi::records {

// "kpi/<id>/<kind>/"
std::string key_prefix(std::string_view id, std::string_view kind);
// "kpi/<id>/first_sample": the time of the first sample the KPI ever had (decimal ms).
std::string first_sample_key(std::string_view id);
// The time encoded after a key's prefix (0 when the key is too short).
TimestampMs time_of_key(std::string_view key, size_t prefix_size);
// Appends `v` (space-separated after the first).
void append_number(std::string& out, double v);
std::vector<double> parse_numbers(std::string_view text);
std::optional<Health> parse_health(std::string_view text);
// A band as its record's numbers; "none" for no band.
std::string encode_band(const std::optional<Band>& band);
// A band from its record's numbers (see encode_band); nullopt for "none".
std::optional<Band> band_from(const std::vector<double>& v);
// The thresholds of a band by name, in the order the API lists them.
std::vector<std::pair<std::string, double>> thresholds_of(Direction d, const Band& b);

}  // namespace kpid::kpi::records
