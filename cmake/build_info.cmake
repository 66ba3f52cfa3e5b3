# Run at build time (cmake -P): writes OUTPUT, the build facts /api/v1/status/buildinfo reports,
# from the source tree's git state. configure_file rewrites it only when a fact changed, so an
# unchanged commit rebuilds nothing. The date is SOURCE_DATE_EPOCH's or the commit's (not the
# wall clock), so building the same commit twice gives the same file.
# Inputs: SOURCE_DIR, OUTPUT, TEMPLATE, KPID_VERSION, COMPILER.
set(KPID_REVISION "unknown")
set(KPID_BRANCH "unknown")
set(KPID_BUILD_DATE "")
find_package(Git QUIET)
if(GIT_FOUND)
  execute_process(COMMAND ${GIT_EXECUTABLE} -C ${SOURCE_DIR} rev-parse HEAD
    OUTPUT_VARIABLE rev OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET RESULT_VARIABLE rc)
  if(rc EQUAL 0 AND rev)
    set(KPID_REVISION "${rev}")
    execute_process(COMMAND ${GIT_EXECUTABLE} -C ${SOURCE_DIR} status --porcelain
      --untracked-files=no OUTPUT_VARIABLE dirty ERROR_QUIET)
    if(dirty)
      string(APPEND KPID_REVISION "-dirty")
    endif()
    execute_process(COMMAND ${GIT_EXECUTABLE} -C ${SOURCE_DIR} rev-parse --abbrev-ref HEAD
      OUTPUT_VARIABLE branch OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
    if(branch)
      set(KPID_BRANCH "${branch}")
    endif()
    execute_process(COMMAND ${GIT_EXECUTABLE} -C ${SOURCE_DIR} log -1 --format=%ct
      OUTPUT_VARIABLE commit_time OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  endif()
endif()
# Prometheus' layout: 20060102-15:04:05, UTC.
if(DEFINED ENV{SOURCE_DATE_EPOCH})
  string(TIMESTAMP KPID_BUILD_DATE "%Y%m%d-%H:%M:%S" UTC)
elseif(commit_time)
  set(ENV{SOURCE_DATE_EPOCH} "${commit_time}")
  string(TIMESTAMP KPID_BUILD_DATE "%Y%m%d-%H:%M:%S" UTC)
  unset(ENV{SOURCE_DATE_EPOCH})
else()
  string(TIMESTAMP KPID_BUILD_DATE "%Y%m%d-%H:%M:%S" UTC)
endif()
cmake_host_system_information(RESULT host QUERY HOSTNAME)
set(user "$ENV{USER}")
if(NOT user)
  set(user "unknown")
endif()
set(KPID_BUILD_USER "${user}@${host}")
configure_file(${TEMPLATE} ${OUTPUT} @ONLY)
