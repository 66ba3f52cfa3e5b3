#pragma once
// The cluster module's options: the [cluster] table, parsed straight into this struct by the
// config (and --shard, which overrides shard).

#include "kpid/core/shard.h"
#include "kpid/core/source_pos.h"

namespace kpid::cluster {

// [cluster]: how N kpid instances sharing one config split the work.
struct ClusterOptions {
  Shard shard;          // shard = "i/N"; 0/1 (the default) owns everything
  SourcePos shard_pos;  // where shard was given ("command line" for --shard)
};

}  // namespace kpid::cluster
