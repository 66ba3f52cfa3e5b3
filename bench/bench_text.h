#pragma once
// Text the bench programs share: kpid_bench's data set lines (kpi_bench writes the same data),
// number formatting, URL encoding and nearest-rank percentiles.

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

namespace kpid_bench {

inline void append_int(std::string& out, int64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  (void)ec;
  out.append(buf, end);
}

// `tenths` / 10 with one decimal, e.g. 125 -> "12.5".
inline void append_tenths(std::string& out, int64_t tenths) {
  append_int(out, tenths / 10);
  out.push_back('.');
  out.push_back(static_cast<char>('0' + tenths % 10));
}

// The data set's line for tag set i (host h(i / regions), region r(i % regions)) at its
// `scrape`-th scrape, stamped `ts` ms: three fields whose values depend on i and the scrape.
inline void append_bench_line(std::string& out, int i, int64_t scrape, int regions, int64_t ts) {
  int64_t usage = (static_cast<int64_t>(i) * 37 + scrape * 11) % 1000;  // 0.0 .. 99.9
  int64_t busy = (static_cast<int64_t>(i) * 13 + scrape * 7) % 200;     // 0.0 .. 19.9
  out.append("bench,host=h");
  append_int(out, i / regions);
  out.append(",region=r");
  append_int(out, i % regions);
  out.append(" usage=");
  append_tenths(out, usage);
  out.append(",idle=");
  append_int(out, 100 - usage / 10);
  out.append("i,busy=");
  append_tenths(out, busy);
  out.push_back(' ');
  append_int(out, ts);
  out.push_back('\n');
}

// `v` with `decimals` digits after the point.
inline std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

// RFC 3986 percent-encoding of everything but unreserved characters.
inline std::string percent_encode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    bool unreserved = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '_' || c == '.' || c == '~';
    if (unreserved) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

// Nearest-rank percentiles of a sample of timings.
struct Percentiles {
  double p50 = 0, p90 = 0, p99 = 0, max = 0;
};

inline Percentiles percentiles(std::vector<double> v) {
  Percentiles p;
  if (v.empty()) return p;
  std::sort(v.begin(), v.end());
  auto rank = [&](double q) {
    auto idx = static_cast<size_t>(std::ceil(q / 100.0 * static_cast<double>(v.size())));
    return v[std::min(v.size() - 1, idx == 0 ? 0 : idx - 1)];
  };
  p.p50 = rank(50);
  p.p90 = rank(90);
  p.p99 = rank(99);
  p.max = v.back();
  return p;
}

}  // namespace kpid_bench
