namespace FlexPrefill.Cli.Tests;

public sealed class ModelLocatorTests
{
    [Fact]
    public void A_given_model_folder_is_used_as_is()
    {
        var folder = Directory.CreateTempSubdirectory("flexprefill-locator-");
        try
        {
            Assert.Equal(folder.FullName, ModelLocator.Resolve(folder));
        }
        finally
        {
            folder.Delete();
        }
    }

    [Fact]
    public void Without_a_model_folder_the_default_model_is_found_or_every_tried_path_is_named()
    {
        try
        {
            var found = ModelLocator.Resolve(null);
            Assert.True(File.Exists(Path.Combine(found, "config.json")));
            Assert.EndsWith(Path.Combine("models", "default"), found);
        }
        catch (UsageException e)
        {
            Assert.Contains(Path.Combine(AppContext.BaseDirectory, "models", "default"), e.Message);
            Assert.Contains("--model", e.Message);
        }
    }
}
