// TempDir: a directory of its own for one unit test, removed at the end.
#pragma once

#include <criterion/criterion.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>

namespace maild::test {

struct TempDir {
	std::filesystem::path path;
	TempDir()
	{
		char tmpl[] = "/tmp/maild-test.XXXXXX";
		cr_assert(mkdtemp(tmpl) != nullptr, "mkdtemp failed");
		path = tmpl;
	}
	~TempDir()
	{
		std::error_code ec;
		std::filesystem::remove_all(path, ec);
	}
	TempDir(const TempDir &) = delete;
	TempDir &operator=(const TempDir &) = delete;
	std::string operator/(std::string_view name) const { return (path / name).string(); }
};

} // namespace maild::test
