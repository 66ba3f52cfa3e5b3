#pragma once
// JSON text for kpid's API and records: Boost.JSON's serializer writes doubles in exponent form
// ("3E2"); this one writes them as people and other tools expect ("300", "0.25"), with
// non-finite numbers as null.

#include <string>

#include <boost/json/value.hpp>

namespace kpid {

std::string to_json_text(const boost::json::value& value);
void append_json_text(std::string& out, const boost::json::value& value);

}  // namespace kpid
