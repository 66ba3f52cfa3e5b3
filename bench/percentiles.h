#pragma once
// Nearest-rank percentiles of a sample of timings, shared by the bench programs.

#include <algorithm>
#include <cmath>
#include <vector>

namespace kpid_bench {

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
