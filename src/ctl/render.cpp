#include "kpid/ctl/render.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace kpid::ctl {

std::string Style::paint(std::string_view text, Color c) const {
  if (!color || c == Color::kNone) return std::string(text);
  const char* code = "";
  switch (c) {
    case Color::kGreen: code = "\x1b[32m"; break;
    case Color::kYellow: code = "\x1b[33m"; break;
    case Color::kRed: code = "\x1b[1;31m"; break;
    case Color::kMagenta: code = "\x1b[35m"; break;
    case Color::kGray: code = "\x1b[2m"; break;
    case Color::kBold: code = "\x1b[1m"; break;
    case Color::kNone: break;
  }
  return std::string(code) + std::string(text) + "\x1b[0m";
}

Color color_of(std::string_view status) {
  if (status == "ok" || status == "green" || status == "resolved" || status == "active" ||
      status == "achieved") {
    return Color::kGreen;
  }
  if (status == "warn" || status == "warning" || status == "yellow" || status == "pending" ||
      status == "draft") {
    return Color::kYellow;
  }
  if (status == "crit" || status == "critical" || status == "red" || status == "firing" ||
      status == "missed") {
    return Color::kRed;
  }
  if (status == "anomalous") return Color::kMagenta;
  if (status == "no_data" || status == "unknown" || status == "expired" || status == "abandoned" ||
      status == "dismissed" || status == "closed") {
    return Color::kGray;
  }
  return Color::kNone;
}

size_t display_width(std::string_view utf8) {
  size_t n = 0;
  for (unsigned char c : utf8) n += (c & 0xC0) != 0x80;  // count lead bytes only
  return n;
}

std::string sparkline(std::span<const double> values, size_t width) {
  static constexpr const char* kBlocks[] = {"▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"};
  double lo = INFINITY, hi = -INFINITY;
  for (double v : values) {
    if (!std::isfinite(v)) continue;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  if (!(lo <= hi) || width == 0) return {};
  const size_t cells = std::min(width, values.size());
  std::string out;
  for (size_t cell = 0; cell < cells; ++cell) {
    // Cell `cell` averages values [begin, end): every value lands in exactly one cell.
    const size_t begin = cell * values.size() / cells;
    const size_t end = (cell + 1) * values.size() / cells;
    double sum = 0;
    size_t count = 0;
    for (size_t i = begin; i < end; ++i) {
      if (std::isfinite(values[i])) {
        sum += values[i];
        ++count;
      }
    }
    if (count == 0) {
      out += ' ';
      continue;
    }
    const double mean = sum / static_cast<double>(count);
    // A flat line sits in the middle rather than on the floor, so it does not read as "zero".
    const int level = hi > lo ? static_cast<int>(std::lround((mean - lo) / (hi - lo) * 7)) : 3;
    out += kBlocks[std::clamp(level, 0, 7)];
  }
  return out;
}

std::string progress_bar(double fraction, size_t width) {
  if (!std::isfinite(fraction)) fraction = 0;
  fraction = std::clamp(fraction, 0.0, 1.0);
  const auto filled = static_cast<size_t>(std::floor(fraction * static_cast<double>(width)));
  return "[" + std::string(filled, '#') + std::string(width - filled, '.') + "]";
}

std::string human_number(std::optional<double> v) {
  if (!v || !std::isfinite(*v)) return "-";
  const double a = std::fabs(*v);
  char buffer[64];
  if (a >= 1e5) {
    static constexpr const char* kSuffixes[] = {"k", "M", "G", "T", "P"};
    double scaled = *v / 1e3;
    size_t i = 0;
    while (std::fabs(scaled) >= 999.95 && i + 1 < std::size(kSuffixes)) {
      scaled /= 1e3;
      ++i;
    }
    std::snprintf(buffer, sizeof buffer, "%.3g%s", scaled, kSuffixes[i]);
    return buffer;
  }
  if (a >= 1000 || a == 0) {
    std::snprintf(buffer, sizeof buffer, "%.0f", *v);
  } else if (a < 0.0001) {
    std::snprintf(buffer, sizeof buffer, "%.2e", *v);
  } else {
    std::snprintf(buffer, sizeof buffer, "%.4g", *v);
  }
  return buffer;
}

std::string breach_condition(std::optional<double> low, std::optional<double> high) {
  std::string out;
  if (low) out = "<" + human_number(low);
  if (high) out += (out.empty() ? ">" : " or >") + human_number(high);
  return out;
}

std::string with_unit(std::optional<double> v, std::string_view unit) {
  std::string text = human_number(v);
  if (text == "-" || unit.empty()) return text;
  return text + " " + std::string(unit);
}

std::string human_age(DurationMs age) {
  if (age < 0) return "-";
  const int64_t s = age / 1000;
  char buffer[48];
  if (s < 60) {
    std::snprintf(buffer, sizeof buffer, "%llds", static_cast<long long>(s));
  } else if (s < 3600) {
    std::snprintf(buffer, sizeof buffer, "%lldm", static_cast<long long>(s / 60));
  } else if (s < 86400) {
    const long long m = (s % 3600) / 60;
    if (m == 0) {
      std::snprintf(buffer, sizeof buffer, "%lldh", static_cast<long long>(s / 3600));
    } else {
      std::snprintf(buffer, sizeof buffer, "%lldh %lldm", static_cast<long long>(s / 3600), m);
    }
  } else {
    const long long h = (s % 86400) / 3600;
    if (h == 0) {
      std::snprintf(buffer, sizeof buffer, "%lldd", static_cast<long long>(s / 86400));
    } else {
      std::snprintf(buffer, sizeof buffer, "%lldd %lldh", static_cast<long long>(s / 86400), h);
    }
  }
  return buffer;
}

std::string grouped(uint64_t n) {
  std::string digits = std::to_string(n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

void Table::column(std::string header, Align align) {
  headers_.push_back(std::move(header));
  aligns_.push_back(align);
}

void Table::row(std::vector<Cell> cells) {
  cells.resize(headers_.size());
  rows_.push_back(std::move(cells));
}

std::string Table::render(const Style& style) const {
  std::vector<size_t> widths(headers_.size());
  for (size_t c = 0; c < headers_.size(); ++c) {
    widths[c] = display_width(headers_[c]);
    for (const auto& r : rows_) widths[c] = std::max(widths[c], display_width(r[c].text));
  }
  std::string out;
  auto line = [&](const std::vector<Cell>& cells, bool header) {
    std::string text;
    for (size_t c = 0; c < cells.size(); ++c) {
      const bool last = c + 1 == cells.size();
      const size_t pad = widths[c] - display_width(cells[c].text);
      const bool right = aligns_[c] == Align::kRight;
      if (right) text.append(pad, ' ');
      text += style.paint(cells[c].text, header ? Color::kBold : cells[c].color);
      if (!right && !last) text.append(pad, ' ');
      if (!last) text += "  ";
    }
    while (!text.empty() && text.back() == ' ') text.pop_back();
    out += text;
    out += '\n';
  };
  std::vector<Cell> head;
  for (const auto& h : headers_) head.push_back({h, Color::kNone});
  line(head, true);
  for (const auto& r : rows_) line(r, false);
  return out;
}

}  // namespace kpid::ctl
