#include "records.h"

#include <charconv>
#include <cmath>
#include <limits>

namespace kpid::kpi::records {

namespace {
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
}  // namespace

std::string key_prefix(std::string_view id, std::string_view kind) {
  std::string k = "kpi/";
  k.append(id);
  k.push_back('/');
  k.append(kind);
  k.push_back('/');
  return k;
}

std::string first_sample_key(std::string_view id) {
  std::string k = "kpi/";
  k.append(id);
  k.append("/first_sample");
  return k;
}

TimestampMs time_of_key(std::string_view key, size_t prefix_size) {
  if (key.size() < prefix_size + 8) return 0;
  uint64_t v = 0;
  for (size_t i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(key[prefix_size + i]);
  return static_cast<TimestampMs>(v);
}

void append_number(std::string& out, double v) {
  if (!out.empty()) out.push_back(' ');
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, ec == std::errc() ? end : buf);
}

std::vector<double> parse_numbers(std::string_view text) {
  std::vector<double> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find(' ', pos);
    if (end == std::string_view::npos) end = text.size();
    double v = kNaN;
    std::from_chars(text.data() + pos, text.data() + end, v);
    out.push_back(v);
    pos = end + 1;
  }
  return out;
}

std::optional<Health> parse_health(std::string_view text) {
  for (Health h : {Health::kOk, Health::kWarn, Health::kCrit, Health::kAnomalous, Health::kNoData,
                   Health::kUnknown}) {
    if (health_name(h) == text) return h;
  }
  return std::nullopt;
}

std::string encode_band(const std::optional<Band>& band) {
  if (!band) return "none";
  std::string out;
  append_number(out, band->target ? *band->target : kNaN);
  for (double v :
       {band->warn, band->crit, band->warn_low, band->crit_low, band->warn_high, band->crit_high}) {
    append_number(out, v);
  }
  return out;
}

std::optional<Band> band_from(const std::vector<double>& v) {
  if (v.size() != 7) return std::nullopt;
  Band b;
  if (!std::isnan(v[0])) b.target = v[0];
  b.warn = v[1];
  b.crit = v[2];
  b.warn_low = v[3];
  b.crit_low = v[4];
  b.warn_high = v[5];
  b.crit_high = v[6];
  return b;
}

std::vector<std::pair<std::string, double>> thresholds_of(Direction d, const Band& b) {
  std::vector<std::pair<std::string, double>> out;
  if (b.target) out.emplace_back("target", *b.target);
  if (d == Direction::kInRange) {
    out.emplace_back("warn_low", b.warn_low);
    out.emplace_back("crit_low", b.crit_low);
    out.emplace_back("warn_high", b.warn_high);
    out.emplace_back("crit_high", b.crit_high);
  } else {
    out.emplace_back("warn", b.warn);
    out.emplace_back("crit", b.crit);
  }
  return out;
}

}  // namespace kpid::kpi::records
