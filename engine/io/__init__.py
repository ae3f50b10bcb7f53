"""What runs leave behind: result rows and versions (results) and topology files (topology and topology_*)."""
