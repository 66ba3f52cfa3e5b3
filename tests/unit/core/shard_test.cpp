#include "kpid/core/shard.h"

#include <catch2/catch.hpp>

using kpid::parse_shard;
using kpid::Shard;

TEST_CASE("shard: parse i/N", "[core][shard]") {
  auto s = parse_shard("2/5");
  REQUIRE(s);
  CHECK(s->index == 2);
  CHECK(s->count == 5);
  CHECK(s->text() == "2/5");
  for (const char* bad : {"", "3", "3/3", "a/3", "1/0", "-1/3", "1/3x", "0/5000"}) {
    INFO(bad);
    CHECK_FALSE(parse_shard(bad));
  }
  CHECK(parse_shard("3/3").status().message() ==
        "shard \"3/3\": the index must be below the count (0 to 2)");
}

TEST_CASE("shard: every id has exactly one owner, spread evenly", "[core][shard]") {
  constexpr uint32_t kCount = 4;
  uint32_t owned[kCount] = {};
  for (int i = 0; i < 4000; ++i) {
    const std::string id = "kpi_" + std::to_string(i);
    int owners = 0;
    for (uint32_t k = 0; k < kCount; ++k) {
      if (Shard{k, kCount}.owns(id)) {
        ++owners;
        ++owned[k];
      }
    }
    REQUIRE(owners == 1);
  }
  for (uint32_t n : owned) CHECK((n > 850 && n < 1150));
  // FNV-1a 64 is part of the interface: instances of different builds must agree.
  CHECK(Shard::shard_of("checkout_latency", 1000) == 520);
  CHECK(Shard{2, 3}.owns("checkout_latency"));
  CHECK(Shard{}.owns("anything"));
}
